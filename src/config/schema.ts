/**
 * The config schema as data: every YAML key with its type, default, flag and meaning. The
 * loader takes the set of known keys from here (unknown keys are errors) and reference.ts
 * renders the markdown reference from it, so the documentation cannot drift from the code.
 */

export interface FieldDoc {
  /** YAML key (snake_case). `<name>`/`<id>` stand for user-chosen keys of a mapping. */
  key: string;
  type: string;
  default?: string;
  /** The equivalent command-line flag, if any. */
  flag?: string;
  doc: string;
  /** Fields of each element (mapping values or sequence items). */
  fields?: FieldDoc[];
}

export const CHANNEL_FIELDS: FieldDoc[] = [
  { key: 'kind', type: '`tunnel` \\| `peer`', doc: '`tunnel`: through a hub gateway (IPsec tunnel mode to `gateway`). `peer`: IKE straight to each resolved address.' },
  { key: 'gateway', type: 'IP or host name', doc: '`tunnel` only, required: the hub the traffic is tunnelled through.' },
  { key: 'identity', type: 'string', default: '`%name` (peer) / the gateway (tunnel)', doc: 'Identity the peer must prove with its certificate (the patent\'s "certificate ID"). `%name` = the name that was queried.' },
  { key: 'esp', type: 'proposal', default: '`aes256gcm16`', doc: 'ESP proposal in strongSwan syntax, AEAD only: `aes128gcm16`, `aes256gcm16`, `chacha20poly1305`, optionally with `-prfsha256`, `-ecp256`, `-modp3072`, `-x25519`… DES, 3DES, CBC and other non-AEAD ciphers are refused.' },
  { key: 'negotiate', type: '`before-answer` \\| `on-traffic`', default: '`before-answer`', doc: '`peer` only: bring the SA up before the DNS answer is released, or on the first packet (`on-traffic`: the XFRM trap policy drops the packets until the SA is up; the kernel counts them as `XfrmOutNoStates` in `/proc/net/xfrm_stat`, exported as `dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"}`).' },
  { key: 'negotiate_timeout', type: 'milliseconds (100–60000)', default: '`2000`', doc: '`peer` with `negotiate: before-answer` only: how long the DNS answer waits for the SA; when it is not up by then the client gets SERVFAIL. Raise it for slow peers or machines (stub resolvers commonly give up after about 5 s and retry). An error on a `tunnel` channel or together with `negotiate: on-traffic`.' },
];

export const RULE_FIELDS: FieldDoc[] = [
  { key: 'match', type: 'pattern', doc: 'Condition (quote it: a leading `*` is YAML syntax); `*` is any number of labels, none included. Exact `taro.nec.co.jp`; suffix `*.myfriends.com` (`myfriends.com` and every name under it); subdomain `**.myfriends.com` (the names under it only, not `myfriends.com`); prefix `sato.*` (first label, `sato` itself included); infix `*.biglobe.*` (the labels anywhere in the name: `biglobe.ne.jp`, `www.biglobe`). Case-insensitive, trailing dot ignored, IDN allowed.' },
  { key: 'channel', type: 'channel name', doc: 'How matching names are protected.' },
  { key: 'upstream', type: 'upstream name', doc: 'Optional: resolve matching names through this upstream (split DNS).' },
  { key: 'rules_file', type: 'path', doc: 'Instead of `match`: insert the rules of this file here, one `PATTERN [CHANNEL [UPSTREAM]]` per line (`#` comments); `channel`/`upstream` on the item are the defaults for lines without them. For large rule sets: a million lines load in about a second, YAML would take many. Relative to the config file.' },
];

export const CLIENT_FIELDS: FieldDoc[] = [
  { key: 'cidr', type: 'CIDR', doc: 'Client addresses (IPv4 or IPv6; a bare address is a /32 or /128). The longest matching prefix picks the table.' },
  { key: 'table', type: 'table id', doc: 'Rule table for these clients.' },
];

export const STATIC_FIELDS: FieldDoc[] = [
  { key: 'cidr', type: 'CIDR', doc: 'Destination addresses that are always protected, whatever DNS says (for peers without DNS names).' },
  { key: 'channel', type: 'channel name', doc: 'Channel that protects them.' },
  { key: 'table', type: 'table id', default: '`default`', doc: 'Client group the entry belongs to.' },
];

export const UPSTREAM_FIELDS: FieldDoc[] = [
  { key: 'address', type: 'ADDR[:PORT]', doc: 'IP literal, port 53 unless given; IPv6 as `[ADDR]:PORT`.' },
  { key: 'tsig_key', type: 'key name', doc: 'Sign queries to this upstream with this TSIG key (a policy server).' },
];

export const TSIG_FIELDS: FieldDoc[] = [
  { key: 'algorithm', type: '`hmac-sha256`', default: '`hmac-sha256`', doc: 'TSIG algorithm.' },
  { key: 'secret', type: 'base64', doc: 'The shared secret (or use `secret_file`). Never logged.' },
  { key: 'secret_file', type: 'path', doc: 'File holding the base64 secret (keeps it out of the config).' },
];

export const SCHEMA: FieldDoc[] = [
  { key: 'mode', type: '`host` \\| `gateway` \\| `intercept`', default: '`host`', flag: '--mode', doc: 'Where dnsseal runs: on the node whose applications talk (`host`), on the clients\' gateway (`gateway`), or on an encryption node that hands out intercept addresses (`intercept`).' },
  { key: 'listen', type: 'list of ADDR:PORT', default: '`[127.0.0.53:53]`', flag: '--listen', doc: 'Addresses the DNS proxy listens on (UDP and TCP).' },
  { key: 'upstreams', type: 'mapping name → ADDR[:PORT] or {address, tsig_key}', default: 'first usable nameserver of /etc/resolv.conf as `default`', flag: '--upstream', doc: 'Resolvers dnsseal forwards to. `default` serves every query whose rule names no other.', fields: UPSTREAM_FIELDS },
  { key: 'upstream_source', type: 'IP', default: 'unset (the kernel picks)', flag: '--upstream-source', doc: 'Local address that upstream queries (UDP and TCP) are sent from; its family must match every upstream\'s. A policy server classifies a node by this address (table 501), so several proxies on one machine can each be a distinct client.' },
  { key: 'datapath', type: '`ebpf` \\| `none` \\| `auto`', default: '`auto`', flag: '--datapath', doc: '`ebpf`: kernel maps and programs (needs root). `none`: record decisions only, protect nothing. `auto`: `ebpf` if possible, else `none` with a warning.' },
  { key: 'lan', type: 'list of interfaces', default: '`[]`', flag: '--lan', doc: 'Client-side interfaces (`gateway`, `intercept` modes).' },
  { key: 'wan', type: 'list of interfaces', default: '`[]`', flag: '--wan', doc: 'Uplink interfaces; the leak guard sits on their egress. Empty: the guard goes on the interfaces that carry a default route and follows the default routes (an interface a default route moves to gets the guard within one interface poll, 3 s; none loses it).' },
  { key: 'control', type: 'path', default: '`/run/dnsseal/control.sock`', flag: '--control', doc: 'Control socket (mode 0600) used by `list`, `status`, `flush`, `reload`, `down`.' },
  { key: 'log_level', type: '`debug` \\| `info` \\| `warn` \\| `error`', default: '`info`', flag: '--log-level', doc: 'Least severe level logged; `debug` logs one line per decision.' },
  { key: 'log_format', type: '`logfmt` \\| `json`', default: '`logfmt`', flag: '--log-format', doc: 'Log line format (to stderr).' },
  { key: 'metrics', type: 'ADDR:PORT', default: 'off', flag: '--metrics', doc: 'Serve Prometheus metrics at `/metrics` (e.g. `127.0.0.1:9153`).' },
  { key: 'min_hold', type: 'seconds', default: '`60`', flag: '--min-hold', doc: 'An entry lives at least this long, even if the DNS TTL is shorter.' },
  { key: 'idle', type: 'seconds', default: '`300`', flag: '--idle', doc: 'An expired entry is removed only after no packet used it for this long.' },
  { key: 'upstream_timeout', type: 'milliseconds', default: '`2000`', flag: '--upstream-timeout', doc: 'Give up on an upstream after this long and answer SERVFAIL.' },
  { key: 'canary', type: '`nxdomain` \\| `pass`', default: '`nxdomain`', flag: '--canary', doc: 'Answer for `use-application-dns.net`: NXDOMAIN tells browsers not to use their own DNS-over-HTTPS, which would bypass the policy.' },
  { key: 'channels', type: 'mapping name → channel', flag: '--channel', doc: 'Ways to protect traffic. Ids (and marks) are assigned 1, 2, … in this order.', fields: CHANNEL_FIELDS },
  { key: 'tables', type: 'mapping id → list of rules', flag: '--protect', doc: 'Ordered rule tables; the first rule that matches the query name or any name in its CNAME chain wins. Ids are `default`, numbers (used as the kernel group) or names. `--protect` appends to `default`.', fields: RULE_FIELDS },
  { key: 'clients', type: 'list', flag: '--client-table', doc: 'Client CIDR → table (gateway and intercept modes). Clients that match nothing use `default`.', fields: CLIENT_FIELDS },
  { key: 'static', type: 'list', flag: '--static', doc: 'Destination CIDRs that are always protected.', fields: STATIC_FIELDS },
  { key: 'tsig_keys', type: 'mapping name → key', flag: '--tsig-key', doc: 'TSIG keys for talking to a policy server.', fields: TSIG_FIELDS },
  { key: 'policy_server', type: 'upstream name', flag: '--policy-server', doc: 'The upstream that is a dnsseal policy server: its TSIG-signed answers carry the channel to use.' },
  { key: 'intercept_pools', type: 'list of CIDR', default: '`[]`', flag: '--intercept-pool', doc: '`intercept` mode: address pools handed to clients in place of real addresses.' },
  { key: 'vici_socket', type: 'path', default: '`/var/run/charon.vici`', flag: '--vici-socket', doc: 'strongSwan charon\'s VICI socket, through which dnsseal loads the IPsec connections.' },
  { key: 'pin_root', type: 'path', default: '`/sys/fs/bpf/dnsseal`', flag: '--pin-root', doc: 'Directory on a bpf filesystem where the maps, programs and links are pinned (kept across restarts, removed by `down`). Two dnsseal instances on one machine need two pin roots.' },
  { key: 'local_id', type: 'string', default: 'charon\'s default (our IKE address)', flag: '--local-id', doc: 'Our own IKE identity: a name or address in our certificate; charon picks certificate and key by it.' },
  { key: 'local_ts', type: 'list of CIDR or `dynamic`', default: 'the LAN prefixes (`gateway`, `intercept`) / `dynamic` (`host`)', flag: '--local-ts', doc: 'Local traffic selectors of tunnel-mode IPsec children. By default read at start from the addresses of the `lan` interfaces; `dynamic` is our own IKE address. Transport mode (host-mode `peer` channels) always uses `dynamic`.' },
];

export function knownKeys(fields: FieldDoc[]): string[] {
  return fields.map((f) => f.key);
}
