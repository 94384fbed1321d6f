/**
 * Command-line flags: which flags each command takes, and a parser that turns argv into a
 * command, its positionals and flag values. A command takes its own flags (below) plus the
 * setting flags whose `commands` name it (settings.ts); anything else is refused, naming the
 * command and where to look, before the command does anything. Errors are ConfigErrors
 * located at the flag (`--listen: …`).
 */
import { ConfigError } from '../util/errors.ts';
import { notUsedByPolicyServer, type FlagDescriptor } from './setting.ts';
import { CONFIG_FILE_FLAG, SETTING_FLAGS } from './settings.ts';

/** A command's own flag (not a setting): its commands are the one it is listed under. */
export type OwnFlag = Omit<FlagDescriptor, 'commands' | 'key'>;

const JSON_FLAG: OwnFlag = { name: 'json', help: 'Machine-readable output.' };

/**
 * Every command, with the flags that are its own (filters, output, machine set-up). The keys
 * are the command names the parser knows; src/cli/help.ts documents each one.
 */
export const COMMAND_FLAGS: Record<string, OwnFlag[]> = {
  run: [],
  'policy-server': [],
  check: [JSON_FLAG],
  explain: [{ name: 'client', arg: 'IP', help: 'Explain for this client address (picks its table); default: no client, `default` table.' }, JSON_FLAG],
  list: [
    { name: 'name', arg: 'PATTERN', help: 'Only entries held by a name PATTERN selects, written as in rules (`www.corp.example`, `*.corp.example`, `**.corp.example`, `sato.*`, `*.biglobe.*`), as `flush --name`.' },
    { name: 'address', arg: 'IP|CIDR', help: 'Only this address, or the addresses inside CIDR.' },
    { name: 'channel', arg: 'NAME', help: 'Only entries of this channel (one the daemon runs or has entries of; another is refused with the known ones).' },
    { name: 'table', arg: 'ID', help: 'Only entries of this table (a running table\'s id, or `default`; another is refused with the known ones).' },
    JSON_FLAG,
  ],
  status: [JSON_FLAG],
  flush: [
    { name: 'channel', arg: 'NAME', help: 'Only entries of this channel (a configured channel).' },
    { name: 'table', arg: 'ID', help: 'Only entries of this client table (a configured table id, or `default`).' },
    { name: 'name', arg: 'PATTERN', help: 'Only names matching PATTERN, written as in rules (`www.corp.example`, `*.corp.example`, `sato.*`, `*.biglobe.*`): they are released, and an entry left with no name goes.' },
    { name: 'address', arg: 'IP|CIDR', help: 'Only entries whose address is IP or inside CIDR.' },
    { name: 'cache', help: 'Empty the answer cache instead (with --name: only the answers for the names PATTERN selects); entries are left alone.' },
    JSON_FLAG,
  ],
  reload: [JSON_FLAG],
  log: [JSON_FLAG],
  down: [JSON_FLAG],
  'install-unit': [
    { name: 'systemd', help: 'The systemd unit (default when /run/systemd/system exists).' },
    { name: 'openwrt', help: 'The OpenWrt procd init script (default when /etc/openwrt_release exists).' },
    { name: 'prefix', arg: 'DIR', help: 'Install below DIR (DIR/etc/systemd/system/dnsseal.service, DIR/etc/init.d/dnsseal); default /.' },
    { name: 'binary', arg: 'PATH', help: 'dnsseal path written into the unit; default: this executable (a `bun` run falls back to the template path).' },
    { name: 'print', help: 'Print the unit instead of writing it.' },
    { name: 'force', help: 'Replace a unit that differs from this one (edited, or from another version), keeping the old one as FILE.dnsseal-old; without it such a unit is left alone (exit 1).' },
  ],
  'resolver-setup': [
    { name: 'print', help: 'Show what --apply would write and why (the default; changes nothing).' },
    { name: 'apply', help: 'Write the resolved drop-in or the new resolv.conf (backing the old one up).' },
    { name: 'undo', help: 'Remove the drop-in / restore resolv.conf from its backup.' },
    { name: 'listen', arg: 'ADDR[:53]', help: "dnsseal's listen address; default: the first listen address of --config, else 127.0.0.53." },
    { name: 'config', arg: 'FILE', help: 'Read the listen address from this config.' },
    { name: 'root', arg: 'DIR', help: 'Treat DIR as / (tests, images); default /.' },
  ],
  'config-reference': [],
  'config-default': [],
  man: [],
  version: [],
  help: [],
};

export interface ParsedArgs {
  command: string;
  positionals: string[];
  /** Flag name (without dashes) → values in order. Switches have one value `"true"`. */
  values: Map<string, string[]>;
  /** The subset of `values` that are configuration (settings' flags and --config): what loadConfig reads. */
  settings: Map<string, string[]>;
}

/** Setting flags (and --config) a command takes. */
export function settingFlagsOf(command: string): FlagDescriptor[] {
  const own = new Set((COMMAND_FLAGS[command] ?? []).map((f) => f.name));
  return [CONFIG_FILE_FLAG, ...SETTING_FLAGS].filter((f) => f.commands.includes(command) && !own.has(f.name));
}

/** Every flag `command` takes: its own first (they win over a setting flag of the same name), then settings. */
export function flagsOf(command: string): FlagDescriptor[] {
  return [...(COMMAND_FLAGS[command] ?? []).map((f) => ({ ...f, commands: [command] })), ...settingFlagsOf(command)];
}

/** Why `--name` is not a flag of `command`, and where to look. */
function notTaken(command: string, name: string): ConfigError {
  const setting = [CONFIG_FILE_FLAG, ...SETTING_FLAGS].find((f) => f.name === name);
  if (command === 'policy-server' && setting?.key !== undefined) return new ConfigError(`--${name}`, notUsedByPolicyServer(setting.key));
  const owners = Object.keys(COMMAND_FLAGS).filter((c) => COMMAND_FLAGS[c]!.some((f) => f.name === name));
  const why = setting
    ? ` (a configuration flag: ${setting.commands.join(', ')} take it)`
    : owners.length
      ? ` (${owners.join(', ')} take${owners.length === 1 ? 's' : ''} it)`
      : '';
  return new ConfigError(`--${name}`, `unknown flag for "dnsseal ${command}"${why}; see "dnsseal help ${command}"`);
}

function takesValue(name: string): boolean {
  return SETTING_FLAGS.some((f) => f.name === name && f.arg) || name === CONFIG_FILE_FLAG.name || Object.values(COMMAND_FLAGS).some((l) => l.some((f) => f.name === name && f.arg));
}

export function parseArgs(argv: string[]): ParsedArgs {
  const values = new Map<string, string[]>();
  const settings = new Map<string, string[]>();
  const positionals: string[] = [];
  let command = '';
  const rest: string[] = [];
  // the command is the first word that is not a flag or a flag's value; find it first so
  // flags before it are validated against the right command
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return { command: 'help', positionals: command ? [command] : [], values, settings };
    if (a === '--version' || a === '-V') return { command: 'version', positionals: [], values, settings };
    if (!command && !a.startsWith('-')) {
      const prev = argv[i - 1];
      const prevName = prev?.startsWith('--') && !prev.includes('=') ? prev.slice(2) : undefined;
      if (prevName === undefined || !takesValue(prevName)) {
        command = a;
        continue;
      }
    }
    rest.push(a);
  }
  if (!command && rest.length > 0) {
    throw new ConfigError('', `no command before the flags (${rest[0]} …): dnsseal COMMAND [FLAGS], e.g. dnsseal run --config FILE; see "dnsseal help"`);
  }
  if (!command) command = 'help';
  if (!COMMAND_FLAGS[command]) throw new ConfigError(command, `unknown command (commands: ${Object.keys(COMMAND_FLAGS).join(', ')}); see "dnsseal help"`);
  const specs = flagsOf(command);
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
    if (!a.startsWith('--')) throw new ConfigError(a, `unknown flag (flags are long: --name VALUE); see "dnsseal help ${command}"`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.find((f) => f.name === name);
    if (!spec) throw notTaken(command, name);
    let value: string;
    if (!spec.arg) {
      value = 'true';
      if (eq >= 0) {
        // a setting's switch may say false: it turns off what the file sets (flags win)
        const v = a.slice(eq + 1);
        if (spec.key === undefined) throw new ConfigError(`--${name}`, 'is a switch and takes no value');
        if (v !== 'true' && v !== 'false') throw new ConfigError(`--${name}`, `is a switch: --${name}, or --${name}=false to turn off what the file sets, not "${v}"`);
        value = v;
      }
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
    if (spec.key !== undefined || spec === CONFIG_FILE_FLAG) settings.set(name, list);
  }
  return { command, positionals, values, settings };
}
