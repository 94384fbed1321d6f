/**
 * Every setting dnsseal has, one entry each: YAML key, flag, value type (the parser for both),
 * default, which modes and commands use it, documentation. The YAML reader, the flag parser,
 * per-command flag checks, `--help`, the Config type (types.ts) and the reference
 * (REFERENCE.md, embedded in the README) are derived from this table; the order here is the
 * order of the reference and of flag application.
 *
 * Adding a value setting is one entry here (see README.md "Adding a setting"), then
 * `bun src/main.ts config-reference > src/config/REFERENCE.md` and the README's copy.
 */
import { applyChannelFlags, CHANNEL_FIELDS, readChannels } from './sections/channels.ts';
import { applyHostFlags, applyHostsFileFlags, HOSTS_FIELDS, readHosts, readHostsFile } from './sections/hosts.ts';
import { applyClientFlags, CLIENT_FIELDS, readClients } from './sections/clients.ts';
import { applyStaticFlags, readStatics, STATIC_FIELDS } from './sections/statics.ts';
import { applyForwardFlags, applyProtectFlags, applyRulesFileFlags, readTables, RULE_FIELDS } from './sections/tables.ts';
import { readTlsAccept, TLS_ACCEPT_FIELDS } from './sections/tls-accept.ts';
import { applyTsigKeyFlags, readTsigKeys, TSIG_FIELDS } from './sections/tsig-keys.ts';
import { applyUpstreamFlags, readUpstreams, SERVER_SYNTAX, UPSTREAM_FIELDS } from './sections/upstreams.ts';
import { CONFIG_COMMANDS, MODES, optionalSetting, section, setting, type FlagDescriptor } from './setting.ts';
import { cidrsAtEnd, hostPort, hostPortList, listenOverlaps, hostPortOrOff, ipLiteral, nullable, onOff, oneOf, pinRoot, selectorList, stringList, text, wholeNumber } from './value-types.ts';
import { CACHE_DEFAULTS } from '../cache/cache-limits.ts';
import { MEMORY_PLAN_DEFAULT_MB } from '../daemon/heap-plan.ts';

/** Commands that talk to the daemon over the control socket. */
const CONTROL_COMMANDS = ['list', 'status', 'flush', 'reload', 'down', 'log'] as const;
const WEEK_S = 86400 * 7;

/** `--config FILE`: not a setting, the file the settings are read from. */
export const CONFIG_FILE_FLAG: FlagDescriptor = {
  name: 'config',
  arg: 'FILE',
  default: 'embedded default',
  help:
    'YAML config file (`none`: start from built-in defaults without the example rules). Without it, the embedded default; rule flags (`--channel`, `--forward`, `--protect`, `--rules-file`, `--client-table`, `--static`) then replace its example channels and rules. The control commands read the control socket (and `down` the kernel settings) from it.',
  commands: [...CONFIG_COMMANDS, ...CONTROL_COMMANDS],
};

export const SETTINGS = [
  setting({
    key: 'mode',
    field: 'mode',
    type: oneOf(MODES),
    default: 'host',
    doc: 'Where dnsseal runs: on the node whose applications talk (`host`), on the clients\' gateway (`gateway`), or on an encryption node that hands out intercept addresses (`intercept`).',
    help: 'Deployment mode.',
  }),
  setting({
    key: 'listen',
    field: 'listen',
    type: hostPortList('list of ADDR:PORT'),
    default: ['127.0.0.53:53'],
    check: listenOverlaps,
    doc: 'Addresses the DNS proxy listens on (UDP and TCP). A reload binds new addresses before it closes removed ones; an address that cannot be bound refuses the reload.',
    help: 'Listen address (UDP and TCP); repeat for several.',
  }),
  setting({
    key: 'allow_clients',
    field: 'allowClients',
    type: stringList('list of CIDR', 'CIDR', 'a CIDR'),
    default: [],
    defaultDoc: 'loopback and the LAN prefixes',
    flagDefault: 'loopback and LAN prefixes',
    check: cidrsAtEnd('allowed clients'),
    doc: 'Senders that may query; any other gets REFUSED (counted in `dnsseal_proxy_queries_total{outcome="refused"}`): a resolver on a public address must not answer the world. Unset or empty: loopback (`127.0.0.0/8`, `::1`) plus the network prefixes of the `lan` interfaces\' addresses, read at start and at a reload that changes this setting. The sender counts, not a client a trusted forwarder names (allow the forwarder). `[0.0.0.0/0, ::/0]` allows everyone.',
    help: 'Client CIDR allowed to query (others get REFUSED); repeat for several.',
    flag: 'allow-client',
  }),
  section({
    key: 'upstreams',
    typeDoc: 'mapping name → server, list of servers, or {servers, tsig_key}',
    defaultDoc: 'every usable nameserver of /etc/resolv.conf as `default`',
    doc:
      'Resolvers dnsseal forwards to, by name; `default` serves every query whose rule names no other. A name holds a list of servers, tried in order: each query goes to the first server that is up; one that fails (timeout, ICMP port unreachable, refused connection, TLS or HTTP failure) is skipped at once — the query goes on to the next (3 servers at most) — and probed in the background until it answers. A server is ' +
      SERVER_SYNTAX +
      '. A reload opens the new servers before it swaps them in (the running ones answer what they were sent, then close); a server that cannot be opened refuses the reload.',
    fields: UPSTREAM_FIELDS,
    yaml: readUpstreams,
    flags: [
      {
        name: 'upstream',
        arg: '[NAME=]SERVER[,tsig-key=KEY]',
        repeatable: true,
        default: 'from /etc/resolv.conf',
        help: 'Upstream server of NAME (default `default`): ADDR[:PORT], tls://ADDR[:PORT]#NAME or https://ADDR[:PORT][/PATH]#NAME (PATH by default /dns-query). Repeat to add servers (the first flag for a name replaces the file\'s list); `tsig-key` signs queries to it (policy server).',
        apply: applyUpstreamFlags,
      },
    ],
  }),
  optionalSetting({
    key: 'upstream_source',
    field: 'upstreamSource',
    type: nullable(ipLiteral('IP')),
    defaultDoc: 'unset (the kernel picks)',
    flagDefault: 'kernel picks',
    doc: 'Local address that upstream queries (UDP, TCP and DNS over TLS) are sent from; its family must match every server\'s, and no server may be DNS over HTTPS (HTTPS requests cannot choose their local address). A policy server classifies a node by this address (table 501), so several proxies on one machine can each be a distinct client.',
    help: 'Local IP address upstream queries are sent from (UDP, TCP, DoT).',
  }),
  optionalSetting({
    key: 'upstream_tls_ca',
    field: 'upstreamTlsCa',
    type: nullable(text('path', 'FILE', 'needs a path')),
    defaultDoc: 'unset (the system CA store)',
    flagDefault: 'system CA store',
    doc: 'PEM file of the certificate authorities a DNS-over-TLS or DNS-over-HTTPS server\'s certificate must chain to, instead of the system store (a private CA). Read at start and by a reload that changes the upstreams or this setting.',
    help: 'CA certificates (PEM) DoT/DoH upstream servers must chain to.',
  }),
  setting({
    key: 'datapath',
    field: 'datapath',
    type: oneOf(['ebpf', 'none', 'auto', 'fake'], ['fake']),
    default: 'auto',
    doc: '`ebpf`: kernel maps and programs (needs root). `none`: record decisions only, protect nothing (explicit: answers are released unprotected). `auto`: `ebpf` if possible; when eBPF cannot come up and the config protects anything (rules with a channel, statics, a policy server) the daemon refuses to start and says why; with nothing to protect, `none` with a warning.',
    help: 'Kernel data path (`fake` exists for tests).',
  }),
  setting({
    key: 'lan',
    field: 'lan',
    type: stringList('list of interfaces', 'IFACE', 'an interface name'),
    default: [],
    modes: ['gateway', 'intercept'],
    doc: 'Client-side interfaces (`gateway`, `intercept` modes).',
    help: 'Client-side interface.',
  }),
  setting({
    key: 'wan',
    field: 'wan',
    type: stringList('list of interfaces', 'IFACE', 'an interface name'),
    default: [],
    doc: 'Uplink interfaces. Host mode: the tc leak guard sits on their egress (the cgroup egress guard covers every socket anyway); empty: it goes on the interfaces that carry a default route and follows the default routes (an interface a default route moves to gets the guard within one interface poll, 3 s; none loses it). Gateway and intercept modes put the guard on every interface but `lo` (on the LAN ones by destination only), whatever `wan` says.',
    help: 'Uplink interface (the leak guard sits here).',
  }),
  setting({
    key: 'trusted_forwarders',
    field: 'trustedForwarders',
    type: stringList('list of CIDR', 'CIDR', 'a CIDR'),
    default: [],
    modes: ['gateway', 'intercept'],
    check: cidrsAtEnd('trusted forwarder'),
    doc: 'Resolvers in front of dnsseal (dnsmasq on OpenWrt, say) whose queries name the real client in EDNS Client Subnet (RFC 7871; dnsmasq `--add-subnet=32,128 --strip-subnet`): a full-length source prefix (/32, /128) from one of these addresses classifies the query as that client\'s (its table and kernel group). Any other sender\'s option is ignored; the option never reaches an upstream. Must not overlap `clients:` (a client that is trusted could pick its own table).',
    help: 'A resolver in front of dnsseal whose EDNS Client Subnet names the client; repeat for several.',
    flag: 'trusted-forwarder',
  }),
  setting({
    key: 'enforce_dns',
    field: 'enforceDns',
    type: oneOf(['off', 'redirect', 'drop']),
    default: 'off',
    modes: ['gateway', 'intercept'],
    doc: 'DNS that goes around dnsseal (a LAN client asking another resolver gets addresses dnsseal never registered). `redirect`: plain DNS (UDP/TCP 53) arriving on a `lan` interface for any address dnsseal does not listen on is answered by dnsseal (DNAT to its listen address of that family; the client still sees the resolver it asked); `drop`: that DNS is dropped. Both drop DNS-over-TLS (TCP 853) and DNS-over-QUIC (UDP 853), and drop the plain DNS of a family dnsseal does not serve to the LAN (no listen address of it, or loopback only). One nftables table, `inet dnsseal_enforce`, counted in `dnsseal_enforce_dns_packets_total`; `down` removes it. DNS-over-HTTPS cannot be told from other HTTPS: the `canary` is what keeps browsers off their own DoH.',
    help: 'Redirect or drop LAN DNS that goes to other resolvers (and DoT/DoQ).',
  }),
  setting({
    key: 'control',
    field: 'control',
    type: text('path', 'PATH', 'needs a path'),
    default: '/run/dnsseal/control.sock',
    commands: [...CONFIG_COMMANDS, ...CONTROL_COMMANDS],
    doc: 'Control socket (mode 0600) used by `list`, `status`, `flush`, `reload`, `down`.',
    help: 'Control socket.',
  }),
  setting({
    key: 'log_level',
    field: 'logLevel',
    type: oneOf(['debug', 'info', 'warn', 'error']),
    default: 'info',
    doc: 'Least severe level logged; `debug` logs one line per decision.',
    help: 'Log level.',
  }),
  setting({
    key: 'log_format',
    field: 'logFormat',
    type: oneOf(['logfmt', 'json']),
    default: 'logfmt',
    doc: 'Log line format (to stderr), also of the query log.',
    help: 'Log format.',
  }),
  setting({
    key: 'log_queries',
    field: 'logQueries',
    type: onOff(),
    default: false,
    doc: 'The query log: one line per query (client, name, type, rcode, upstream, latency, cache hit, the decision: table, rule, channel, and the addresses registered), in `log_format`, whatever `log_level` says. `dnsseal log queries on` (or `off`) switches it on the running daemon until a reload changes this setting.',
    help: 'Log one line per query.',
  }),
  optionalSetting({
    key: 'metrics',
    field: 'metrics',
    type: hostPortOrOff('ADDR:PORT'),
    defaultDoc: 'off',
    flagDefault: 'off',
    doc: 'Serve Prometheus metrics at `/metrics` (e.g. `127.0.0.1:9153`).',
    help: 'Prometheus endpoint, e.g. 127.0.0.1:9153.',
  }),
  setting({
    key: 'min_hold',
    field: 'minHoldS',
    type: wholeNumber(0, WEEK_S, 'seconds', 'SECONDS'),
    default: 60,
    doc: 'An entry lives at least this long, even if the DNS TTL is shorter.',
    help: 'Minimum entry lifetime past the DNS TTL.',
  }),
  setting({
    key: 'idle',
    field: 'idleS',
    type: wholeNumber(0, WEEK_S, 'seconds', 'SECONDS'),
    default: 300,
    doc: 'An entry whose hold ran out is kept live while packets used it within this long; after that it is retired (see `retire`).',
    help: 'Idle time before an expired entry is retired.',
  }),
  setting({
    key: 'retire',
    field: 'retireS',
    type: wholeNumber(60, 86400 * 30, 'seconds', 'SECONDS'),
    default: 86400,
    doc: 'How long a retired entry (hold run out and idle, or flushed, or dropped by a reload) stays in the map after its last packet: traffic an application still sends to the address (a connection pool, a JVM DNS cache) keeps going into its tunnel channel, or is dropped for a peer channel, never in clear. A new answer for the name brings it back to live. When the map is full, retired entries are evicted, the one quiet longest first.',
    help: 'How long a retired entry stays after its last packet.',
  }),
  setting({
    key: 'upstream_timeout',
    field: 'upstreamTimeoutMs',
    type: wholeNumber(1, 60000, 'milliseconds', 'MS'),
    default: 2000,
    doc: 'Give up on an upstream after this long and answer SERVFAIL.',
    help: 'Upstream timeout before SERVFAIL.',
  }),
  setting({
    key: 'cache_size',
    field: 'cacheSize',
    type: wholeNumber(0, 10_000_000, 'entries', 'N'),
    default: CACHE_DEFAULTS.maxEntries,
    doc: 'The answer cache: most answers kept (per question, DNSSEC bits and upstream), for their TTL (RFC 1035; negative answers by RFC 2308). `0` turns it off: every query goes upstream. Every answer from the cache is decided and registered like a fresh one (for the asking client\'s group, with the remaining TTL) before it is released, so a cached name can never outlive its protection. Live: a reload resizes it (a smaller size evicts at once), and empties it when the upstreams change; `dnsseal flush --cache` empties it.',
    help: 'Answer cache entries (0: off).',
  }),
  setting({
    key: 'cache_bytes',
    field: 'cacheBytes',
    type: wholeNumber(0, 4 * 1024 ** 3, 'bytes', 'BYTES'),
    default: CACHE_DEFAULTS.maxBytes,
    doc: 'Most memory the answer cache uses, as estimated per entry (its bytes plus about 600); the default holds `cache_size` typical answers. An answer larger than this is not kept.',
    help: 'Answer cache memory bound.',
  }),
  setting({
    key: 'cache_max_ttl',
    field: 'cacheMaxTtlS',
    type: wholeNumber(1, WEEK_S, 'seconds', 'SECONDS'),
    default: CACHE_DEFAULTS.maxTtlS,
    doc: 'Cap of every TTL the cache keeps (and hands out): an answer is asked again at the latest after this long.',
    help: 'Longest TTL kept in the cache.',
  }),
  setting({
    key: 'cache_max_negative_ttl',
    field: 'cacheMaxNegativeTtlS',
    type: wholeNumber(0, WEEK_S, 'seconds', 'SECONDS'),
    default: CACHE_DEFAULTS.maxNegTtlS,
    doc: 'Cap of the TTL of a negative answer (NXDOMAIN, NODATA: the SOA\'s, RFC 2308); `0` keeps none.',
    help: 'Longest TTL of a cached negative answer.',
  }),
  setting({
    key: 'cache_stale',
    field: 'cacheStaleS',
    type: wholeNumber(0, 30 * 86400, 'seconds', 'SECONDS'),
    default: CACHE_DEFAULTS.staleMaxS,
    doc: 'Serve-stale (RFC 8767): when the upstream fails or answers SERVFAIL, an answer expired less than this long ago is served with TTL 30 (and registered like any other); for 30 s after that the name is answered stale at once. `0`: off. RFC 8767 suggests 1–3 days.',
    help: 'Serve expired answers this long when the upstream fails (0: off).',
  }),
  setting({
    key: 'cache_prefetch',
    field: 'cachePrefetch',
    type: onOff(),
    default: CACHE_DEFAULTS.prefetch,
    doc: 'The first hit in the last tenth of an entry\'s lifetime asks the upstream again in the background, so a name in use does not drop out of the cache.',
    help: 'Refresh popular cache entries before they expire.',
  }),
  setting({
    key: 'memory_plan',
    field: 'memoryPlanMb',
    type: wholeNumber(0, 1024 * 1024, 'MiB', 'MIB'),
    default: MEMORY_PLAN_DEFAULT_MB,
    doc: 'The memory the daemon sizes its JavaScript heap for, in MiB. The engine (JavaScriptCore) lets its heap grow between full collections by 2× while it is under a quarter of the RAM it sees, 1.5× under a half, 1.24× above: sized for a machine of many GB, a daemon whose live heap is 30 MB swings to several times that under load, and its RSS follows. `dnsseal run` starts itself again at once (execve: the same process id and arguments) with the engine told this much RAM (`BUN_JSC_forceRAMSize`, an option Bun calls unstable), after checking in a child that this Bun takes it (when it does not: a warning, and the engine\'s default). Not a limit: a heap that needs more grows. It trades CPU for memory (more full collections). Measured under 8k qps over 100k names with TTL 1 (`make bench-soak`, 2026-12-03): `256` (default) holds a median RSS of 117 MB (peak 131) where the engine\'s own sizing gives 157 (peak 205), for 7% more CPU per answer; at saturation (`make bench-dns`, cache on and off) no difference was measured; with 200k rules (60 s) a median of 177 MB (peak 202) against 191 (peak 226). `128`: 107 MB for 10% more CPU; below that, more CPU and no less memory. `0`: the engine\'s own sizing (the machine\'s RAM), and no second start; a machine with no more RAM than the plan gets that too. A `BUN_JSC_forceRAMSize` in the environment wins. Applies at a restart.',
    help: 'Memory (MiB) the JavaScript heap is sized for (0: the machine\'s RAM).',
  }),
  setting({
    key: 'canary',
    field: 'canary',
    type: oneOf(['nxdomain', 'pass']),
    default: 'nxdomain',
    doc: 'Answer for `use-application-dns.net`: NXDOMAIN tells browsers not to use their own DNS-over-HTTPS, which would bypass the policy.',
    help: 'Answer for use-application-dns.net.',
  }),
  section({
    key: 'hosts',
    typeDoc: 'mapping name → address or list of addresses',
    defaultDoc: 'none',
    doc:
      'Local records, answered here and never asked upstream (like dnsmasq\'s /etc/hosts): A and AAAA for each name, PTR for the reverse name of each address (the first name given for it), NODATA for any other type of these names; the AA flag is set (the operator\'s own data, not a cached answer). Names compare without case; a name below a local one is forwarded as usual. A local name a protecting rule matches is registered like any answer before it is released. With `hosts_file`, a name in both has the addresses of both. A reload applies changes at once.',
    fields: HOSTS_FIELDS,
    yaml: readHosts,
    flags: [
      {
        name: 'host',
        arg: 'NAME=ADDR[,ADDR…]',
        repeatable: true,
        help: 'A local record: answer NAME with these addresses (and their PTR names) without asking an upstream. The first flag for a name replaces the file\'s addresses of it.',
        apply: applyHostFlags,
      },
    ],
  }),
  section({
    key: 'hosts_file',
    typeDoc: 'path',
    defaultDoc: 'none',
    doc: 'More local records, in /etc/hosts format: `ADDR NAME [ALIAS…]` per line, `#` comments; each problem is reported at its line. Relative to the config file. Read at start and by every reload (an edited file is applied by `dnsseal reload`; one that cannot be read refuses the reload).',
    fields: [],
    yaml: readHostsFile,
    flags: [{ name: 'hosts-file', arg: 'FILE', help: 'Local records in /etc/hosts format (replaces the file\'s hosts_file).', apply: applyHostsFileFlags }],
  }),
  setting({
    key: 'hosts_ttl',
    field: 'hostsTtlS',
    type: wholeNumber(0, 86400, 'seconds', 'SECONDS'),
    default: 60,
    doc: 'TTL of the answers from `hosts` and `hosts_file`: how long a client may keep a local address after a reload changed it. A protected local name\'s entry lives at least `min_hold`.',
    help: 'TTL of local records (hosts, hosts_file).',
  }),
  section({
    key: 'channels',
    typeDoc: 'mapping name → channel',
    doc: 'Ways to protect traffic. Ids (and marks) are assigned 1, 2, … in this order.',
    fields: CHANNEL_FIELDS,
    yaml: readChannels,
    flags: [
      {
        name: 'channel',
        arg: 'NAME=SPEC',
        repeatable: true,
        policy: true,
        help:
          'IPsec: `NAME=tunnel:GATEWAY[,identity=ID][,esp=PROPOSAL]` or `NAME=peer[,identity=ID|%name][,esp=PROPOSAL][,negotiate=before-answer|on-traffic][,negotiate_timeout=MS]`, ' +
          'both also `[,local_identity=ID]`; TLS: `NAME=tls-tunnel:HUB[,identity=NAME]` or `NAME=tls-peer[,identity=NAME|%name]`, both also `[,tls_port=PORT]` `[,local_identity=NAME]` `[,cert=PATH][,key=PATH][,ca=PATH]`.',
        apply: applyChannelFlags,
      },
    ],
  }),
  section({
    key: 'tables',
    typeDoc: 'mapping id → list of rules',
    doc:
      'Ordered rule tables. A rule with a `channel` protects; one with only an `upstream` forwards (conditional forwarding) and protects nothing. Which upstream a query goes to: the first rule, in table order, that matches the query name (its `upstream`, else `default`). Whether the answer is protected: the first rule *with a channel* that matches the query name or any name in its CNAME chain (forwarding rules take no part: they never protect, never unprotect). Ids are `default`, numbers (used as the kernel group) or names. `--forward`, `--protect` and `--rules-file` append to `default`, in that order.',
    fields: RULE_FIELDS,
    yaml: readTables,
    flags: [
      {
        name: 'forward',
        arg: 'PATTERN=UPSTREAM',
        repeatable: true,
        policy: true,
        help: 'Append a forwarding rule to the `default` table: names matching PATTERN are resolved through UPSTREAM, nothing is protected (before the `--protect` rules).',
        apply: applyForwardFlags,
      },
      { name: 'protect', arg: 'PATTERN=CHANNEL[,upstream=NAME]', repeatable: true, policy: true, help: 'Append a rule to the `default` table.', apply: applyProtectFlags },
      {
        name: 'rules-file',
        arg: 'FILE[,channel=NAME][,upstream=NAME]',
        repeatable: true,
        policy: true,
        help: 'Append the rules of FILE (one `PATTERN [CHANNEL [UPSTREAM]]` per line, CHANNEL `-` for a forwarding rule) to the `default` table.',
        apply: applyRulesFileFlags,
      },
    ],
  }),
  section({
    key: 'clients',
    typeDoc: 'list',
    modes: ['gateway', 'intercept'],
    doc: 'Client CIDR → table (gateway and intercept modes). Clients that match nothing use `default`.',
    fields: CLIENT_FIELDS,
    yaml: readClients,
    flags: [{ name: 'client-table', arg: 'CIDR=TABLE', repeatable: true, policy: true, help: 'Clients in CIDR use rule table TABLE.', apply: applyClientFlags }],
  }),
  section({
    key: 'static',
    typeDoc: 'list',
    doc: 'Destination CIDRs that are always protected.',
    fields: STATIC_FIELDS,
    yaml: readStatics,
    flags: [{ name: 'static', arg: 'CIDR=CHANNEL[,table=ID]', repeatable: true, policy: true, help: 'Always protect CIDR through CHANNEL.', apply: applyStaticFlags }],
  }),
  section({
    key: 'tsig_keys',
    typeDoc: 'mapping name → key',
    doc: 'TSIG keys for talking to a policy server.',
    fields: TSIG_FIELDS,
    yaml: readTsigKeys,
    flags: [
      {
        name: 'tsig-key',
        arg: 'NAME:hmac-sha256:BASE64 | NAME=FILE',
        repeatable: true,
        help: 'TSIG key (hmac-sha256): inline, or its base64 secret read from FILE (keeps it out of ps).',
        apply: applyTsigKeyFlags,
      },
    ],
  }),
  optionalSetting({
    key: 'policy_server',
    field: 'policyServer',
    type: nullable(text('upstream name', 'NAME')),
    doc: 'The upstream that is a dnsseal policy server: its TSIG-signed answers carry the channel to use.',
    help: 'Upstream NAME is a policy server.',
  }),
  setting({
    key: 'intercept_pools',
    field: 'interceptPools',
    type: stringList('list of CIDR', 'CIDR', 'a CIDR'),
    default: [],
    modes: ['intercept'],
    commands: [...CONFIG_COMMANDS, 'down'],
    check: cidrsAtEnd('intercept pool'),
    doc: '`intercept` mode: address pools handed to clients in place of real addresses.',
    help: 'Intercept address pool (intercept mode).',
    flag: 'intercept-pool',
  }),
  setting({
    key: 'vici_socket',
    field: 'viciSocket',
    type: text('path', 'PATH', 'needs a path'),
    default: '/var/run/charon.vici',
    commands: [...CONFIG_COMMANDS, 'down'],
    doc: 'strongSwan charon\'s VICI socket, through which dnsseal loads the IPsec connections.',
    help: "strongSwan charon's VICI socket.",
    optionalField: true,
  }),
  setting({
    key: 'pin_root',
    field: 'pinRoot',
    type: pinRoot('path'),
    default: '/sys/fs/bpf/dnsseal',
    commands: [...CONFIG_COMMANDS, 'down'],
    doc: 'Directory on a bpf filesystem where the maps, programs and links are pinned (kept across restarts, removed by `down`). Two dnsseal instances on one machine need two pin roots.',
    help: 'Where the eBPF maps, programs and links are pinned.',
    optionalField: true,
  }),
  optionalSetting({
    key: 'local_id',
    field: 'localId',
    type: nullable(text('string', 'ID', 'needs an identity (a name or address in our certificate)')),
    defaultDoc: 'charon\'s default (our IKE address)',
    flagDefault: "charon's default",
    doc: 'Our own IKE identity: a name or address in our certificate; charon picks certificate and key by it.',
    help: 'Our IKE identity (a name or address in our certificate).',
  }),
  setting({
    key: 'local_ts',
    field: 'localTs',
    type: selectorList('list of CIDR or `dynamic`'),
    default: [],
    defaultDoc: 'the LAN prefixes (`gateway`, `intercept`) / `dynamic` (`host`)',
    flagDefault: 'LAN prefixes / dynamic',
    doc: 'Local traffic selectors of tunnel-mode IPsec children. By default read at start from the addresses of the `lan` interfaces; `dynamic` is our own IKE address. Transport mode (host-mode `peer` channels) always uses `dynamic`.',
    help: 'Local traffic selector of tunnel-mode IPsec children; repeat for several.',
    optionalField: true,
  }),
  setting({
    key: 'tls_relay',
    field: 'tlsRelay',
    type: hostPort('ADDR:PORT'),
    default: '127.0.0.1:9854',
    doc: 'Where the relay of `protocol: tls` channels listens (started only when a tls channel is configured); it carries each connection to a tls-channel address in its own mutual TLS connection. With `datapath: ebpf` the kernel hands it those connections: host mode redirects TCP connects in the cgroup connect hook (the application\'s `getpeername` still shows the original address; the relay\'s own connects are exempt by its process id), gateway mode hands LAN clients\' TCP to its socket at LAN ingress. An IPv4 address also serves IPv6 sockets at its IPv4-mapped form; `::` serves both (at `127.0.0.1` and `::1`). No relay (or no address of the socket\'s family): such connects are refused; the leak guard drops everything else to tls-channel addresses (not TCP, or TCP that bypassed the relay).',
    help: 'Listen address of the TLS channel relay.',
  }),
  optionalSetting({
    key: 'tls_cert',
    field: 'tlsCert',
    type: nullable(text('path', 'PATH', 'needs a path')),
    defaultDoc: 'unset',
    flagDefault: 'none',
    doc: 'Our certificate (PEM, leaf first) for every `protocol: tls` channel without its own `cert`, and for `tls_accept`. Read and checked at load when something uses it: valid now, matching `tls_key`, holding `tls_local_identity`.',
    help: 'Default certificate (PEM) of TLS channels and tls_accept.',
  }),
  optionalSetting({
    key: 'tls_key',
    field: 'tlsKey',
    type: nullable(text('path', 'PATH', 'needs a path')),
    defaultDoc: 'unset',
    flagDefault: 'none',
    doc: 'The unencrypted PEM private key of `tls_cert`.',
    help: 'Default private key (PEM) of TLS channels and tls_accept.',
  }),
  optionalSetting({
    key: 'tls_ca',
    field: 'tlsCa',
    type: nullable(text('path', 'PATH', 'needs a path')),
    defaultDoc: 'unset',
    flagDefault: 'none',
    doc: 'The CA certificate(s) (PEM) the other side of a TLS channel must chain to: the accepting sides\' certificates for channels, the relays\' for `tls_accept`. Only this CA is trusted (not the system roots).',
    help: 'Default CA (PEM) TLS peers must chain to.',
  }),
  optionalSetting({
    key: 'tls_local_identity',
    field: 'tlsLocalIdentity',
    type: nullable(text('DNS name', 'NAME', 'needs a DNS name')),
    defaultDoc: 'unset (any DNS name of the certificate)',
    flagDefault: 'any name of the certificate',
    doc: 'Our identity on TLS channels without their own `local_identity`, and of `tls_accept`: a DNS name the certificate must hold (checked at load). IPsec channels use `local_id`.',
    help: 'Default local identity (a DNS name in our certificate) of TLS channels.',
  }),
  section({
    key: 'tls_accept',
    typeDoc: 'mapping',
    defaultDoc: 'off',
    doc: 'Accept TLS channels from other dnsseal nodes\' relays (a hub, or a peer that is itself the destination): mutual TLS 1.3 with client certificates from `ca`, then a TCP connection onward only where the client\'s allow-list permits. Runs inside `dnsseal run`, next to everything else (a node that only accepts: `datapath: none`, no rules). File only. Status: `dnsseal status` field `tls.accept`; metrics `dnsseal_tls_accept_connections_total` and the other `dnsseal_tls_*`.',
    fields: TLS_ACCEPT_FIELDS,
    yaml: readTlsAccept,
    flags: [],
  }),
] as const;

export type Settings = typeof SETTINGS;

/** Every flag that sets configuration (settings' flags, then none other), in table order. */
export const SETTING_FLAGS: FlagDescriptor[] = SETTINGS.flatMap((s): FlagDescriptor[] => (s.kind === 'section' ? s.flags : s.flag ? [s.flag] : []));

/** Flags that carry policy: when any is given without --config, the example rules are dropped. */
export const POLICY_FLAGS: string[] = SETTINGS.flatMap((s) => (s.kind === 'section' ? s.flags.filter((f) => f.policy).map((f) => f.name) : []));
