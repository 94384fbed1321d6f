/**
 * Command-line flags: the spec (shared with `--help`) and a parser that turns argv into a
 * command, its positionals and flag values. Every config key has a flag; flags win over the
 * file (applied in load.ts). Errors are ConfigErrors located at the flag (`--listen: …`).
 */
import { ConfigError } from '../util/errors.ts';

export interface FlagSpec {
  name: string;
  /** Value placeholder; absent for boolean switches. */
  arg?: string;
  repeatable?: boolean;
  default?: string;
  doc: string;
}

/** Flags that set configuration; accepted by every command that reads the config. */
export const CONFIG_FLAGS: FlagSpec[] = [
  { name: 'config', arg: 'FILE', default: 'embedded default', doc: 'YAML config file (`none`: start from built-in defaults without the example rules).' },
  { name: 'mode', arg: 'host|gateway|intercept', default: 'host', doc: 'Deployment mode.' },
  { name: 'listen', arg: 'ADDR:PORT', repeatable: true, default: '127.0.0.53:53', doc: 'Listen address (UDP and TCP); repeat for several.' },
  { name: 'upstream', arg: '[NAME=]ADDR[:PORT][,tsig-key=KEY]', repeatable: true, default: 'from /etc/resolv.conf', doc: 'Upstream resolver; NAME defaults to `default`; `tsig-key` signs queries to it (policy server).' },
  { name: 'upstream-source', arg: 'ADDR', default: 'kernel picks', doc: 'Local IP address upstream queries are sent from (UDP and TCP).' },
  { name: 'protect', arg: 'PATTERN=CHANNEL[,upstream=NAME]', repeatable: true, doc: 'Append a rule to the `default` table.' },
  { name: 'rules-file', arg: 'FILE[,channel=NAME][,upstream=NAME]', repeatable: true, doc: 'Append the rules of FILE (one `PATTERN [CHANNEL [UPSTREAM]]` per line) to the `default` table.' },
  { name: 'channel', arg: 'NAME=SPEC', repeatable: true, doc: '`NAME=tunnel:GATEWAY[,identity=ID][,esp=PROPOSAL]` or `NAME=peer[,identity=ID|%name][,esp=PROPOSAL][,negotiate=before-answer|on-traffic][,negotiate_timeout=MS]`.' },
  { name: 'client-table', arg: 'CIDR=TABLE', repeatable: true, doc: 'Clients in CIDR use rule table TABLE.' },
  { name: 'static', arg: 'CIDR=CHANNEL[,table=ID]', repeatable: true, doc: 'Always protect CIDR through CHANNEL.' },
  { name: 'datapath', arg: 'ebpf|none|auto', default: 'auto', doc: 'Kernel data path (`fake` exists for tests).' },
  { name: 'lan', arg: 'IFACE', repeatable: true, doc: 'Client-side interface.' },
  { name: 'wan', arg: 'IFACE', repeatable: true, doc: 'Uplink interface (the leak guard sits here).' },
  { name: 'control', arg: 'PATH', default: '/run/dnsseal/control.sock', doc: 'Control socket.' },
  { name: 'log-level', arg: 'debug|info|warn|error', default: 'info', doc: 'Log level.' },
  { name: 'log-format', arg: 'logfmt|json', default: 'logfmt', doc: 'Log format.' },
  { name: 'metrics', arg: 'ADDR:PORT', default: 'off', doc: 'Prometheus endpoint, e.g. 127.0.0.1:9153.' },
  { name: 'min-hold', arg: 'SECONDS', default: '60', doc: 'Minimum entry lifetime past the DNS TTL.' },
  { name: 'idle', arg: 'SECONDS', default: '300', doc: 'Idle time before an expired entry is removed.' },
  { name: 'upstream-timeout', arg: 'MS', default: '2000', doc: 'Upstream timeout before SERVFAIL.' },
  { name: 'canary', arg: 'nxdomain|pass', default: 'nxdomain', doc: 'Answer for use-application-dns.net.' },
  { name: 'policy-server', arg: 'NAME', doc: 'Upstream NAME is a policy server.' },
  { name: 'tsig-key', arg: 'NAME:hmac-sha256:BASE64 | NAME=FILE', repeatable: true, doc: 'TSIG key (hmac-sha256): inline, or its base64 secret read from FILE (keeps it out of ps).' },
  { name: 'intercept-pool', arg: 'CIDR', repeatable: true, doc: 'Intercept address pool (intercept mode).' },
  { name: 'vici-socket', arg: 'PATH', default: '/var/run/charon.vici', doc: "strongSwan charon's VICI socket." },
  { name: 'pin-root', arg: 'PATH', default: '/sys/fs/bpf/dnsseal', doc: 'Where the eBPF maps, programs and links are pinned.' },
  { name: 'local-id', arg: 'ID', default: "charon's default", doc: 'Our IKE identity (a name or address in our certificate).' },
  { name: 'local-ts', arg: 'CIDR|dynamic', repeatable: true, default: 'LAN prefixes / dynamic', doc: 'Local traffic selector of tunnel-mode IPsec children; repeat for several.' },
];

const JSON_FLAG: FlagSpec = { name: 'json', doc: 'Machine-readable output.' };

/** Flags specific to one command, on top of CONFIG_FLAGS. */
export const COMMAND_FLAGS: Record<string, FlagSpec[]> = {
  explain: [{ name: 'client', arg: 'IP', doc: 'Explain for this client address (picks its table); default: no client, `default` table.' }, JSON_FLAG],
  list: [
    { name: 'name', arg: 'NAME', doc: 'Only entries held by this name.' },
    { name: 'address', arg: 'IP', doc: 'Only this address.' },
    { name: 'channel', arg: 'NAME', doc: 'Only entries of this channel.' },
    { name: 'table', arg: 'ID', doc: 'Only this client group.' },
    JSON_FLAG,
  ],
  status: [JSON_FLAG],
  flush: [
    { name: 'name', arg: 'NAME', doc: 'Only entries held by this name.' },
    { name: 'address', arg: 'IP', doc: 'Only this address.' },
    JSON_FLAG,
  ],
  reload: [JSON_FLAG],
  down: [JSON_FLAG],
  check: [JSON_FLAG],
};

export interface ParsedArgs {
  command: string;
  positionals: string[];
  /** Flag name (without dashes) → values in order. Switches have one value `"true"`. */
  values: Map<string, string[]>;
}

function specFor(command: string, name: string): FlagSpec | undefined {
  // a command's own flag wins over a config flag of the same name (list --channel is a filter)
  return COMMAND_FLAGS[command]?.find((f) => f.name === name) ?? CONFIG_FLAGS.find((f) => f.name === name);
}

export function parseArgs(argv: string[]): ParsedArgs {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  let command = '';
  const rest: string[] = [];
  // the command is the first word that is not a flag or a flag's value; find it first so
  // flags before it are validated against the right command
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return { command: 'help', positionals: command ? [command] : [], values };
    if (a === '--version' || a === '-V') return { command: 'version', positionals: [], values };
    if (!command && !a.startsWith('-')) {
      const prev = argv[i - 1];
      const prevName = prev?.startsWith('--') && !prev.includes('=') ? prev.slice(2) : undefined;
      const prevSpec = prevName === undefined ? undefined : [...CONFIG_FLAGS, ...Object.values(COMMAND_FLAGS).flat()].find((f) => f.name === prevName && f.arg);
      if (!prevSpec?.arg) {
        command = a;
        continue;
      }
    }
    rest.push(a);
  }
  if (!command) command = 'help';
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') {
      positionals.push(...rest.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    if (!a.startsWith('--')) throw new ConfigError(a, `unknown flag (flags are long: --name VALUE); see "dnsseal help"`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = specFor(command, name);
    if (!spec) throw new ConfigError(`--${name}`, `unknown flag for "dnsseal ${command}"; see "dnsseal help ${command}"`);
    let value: string;
    if (!spec.arg) {
      if (eq >= 0) throw new ConfigError(`--${name}`, 'is a switch and takes no value');
      value = 'true';
    } else if (eq >= 0) {
      value = a.slice(eq + 1);
    } else {
      const next = rest[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new ConfigError(`--${name}`, `needs a value: --${name} ${spec.arg}`);
      }
      value = next;
      i++;
    }
    const list = values.get(name) ?? [];
    if (spec.repeatable) list.push(value);
    else list.splice(0, list.length, value); // the last one given wins
    values.set(name, list);
  }
  return { command, positionals, values };
}
