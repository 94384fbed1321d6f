/**
 * `dnsseal help [COMMAND]` / `COMMAND --help`: what each command does, exactly the flags it
 * takes (its own, then the configuration flags the table of settings gives it), how rules
 * are written, examples, exit codes. Flag lists come from src/config/flags.ts and settings.ts.
 */
import { COMMAND_FLAGS, settingFlagsOf } from '../config/flags.ts';
import { CONFIG_COMMANDS, WITH_POLICY_SERVER, type FlagDescriptor } from '../config/setting.ts';
import { CONFIG_FILE_FLAG, SETTING_FLAGS, SETTINGS } from '../config/settings.ts';
import { EXIT_MEANINGS } from './exit-codes.ts';

interface CommandDoc {
  usage: string;
  summary: string;
  /** Positional arguments: at most `max` (default 0), at least `min` (default 0). */
  args?: { min?: number; max: number; name: string };
  more?: string;
}

/** Every command the parser knows (COMMAND_FLAGS), documented; a test checks the two agree. */
export const COMMANDS: Record<string, CommandDoc> = {
  run: { usage: 'dnsseal run [FLAGS]', summary: 'Start the DNS proxy (foreground; stop with SIGTERM/SIGINT).' },
  'policy-server': {
    usage: 'dnsseal policy-server --config FILE [FLAGS]',
    summary: 'Run the central policy server: answers DNS and adds the asking client\'s channel, TSIG-signed (same rule syntax plus a serve: section).',
    more:
      'The serve: section (policy server only; all optional): zone (a zone file, relative to the config: names under it are answered from it, the others forwarded to the upstreams), ' +
      'zone_origin (its origin when the file has no $ORIGIN), trusted_keys (names of tsig_keys whose signed queries may name the client by EDNS Client Subnet: a gateway forwarding for its LAN), ' +
      'require_tsig (true: unsigned queries get REFUSED; default false), annotate (signed, the default: only answers to signed queries carry the policy option; all: every EDNS answer), ' +
      'fudge (seconds of clock skew accepted on signed queries, 1-3600, default 300). ' +
      `Of the node's settings it uses ${SETTINGS.filter((s) => s.commands.includes('policy-server')).map((s) => s.key).join(', ')} ` +
      '(allow_clients as run does: unset, loopback and the lan interfaces\' prefixes; any other sender gets REFUSED); ' +
      'any other key in its file, and any other setting flag, is refused by name (exit 1).',
  },
  check: { usage: 'dnsseal check [--config FILE] [FLAGS] [--json]', summary: 'Validate the configuration and flags; print a summary or every problem as file:line.' },
  explain: {
    usage: 'dnsseal explain NAME|ADDRESS [--client IP] [--config FILE] [FLAGS] [--json]',
    summary: 'Show what the policy does with NAME (a domain name a client would query, not a pattern; a malformed one is refused): the table consulted, the matching rule (or none), the channel and the upstream; for an IP ADDRESS, the static entry that always protects it (or none). Works offline from the config and flags.',
    args: { min: 1, max: 1, name: 'NAME' },
    more: 'JSON shape: {"name", "client", "table", "rule": {"pattern", "index", "kind"} | null, "channel": {…} | null, "upstream"}; for an ADDRESS {"address", "client", "table", "static": {"cidr", "channel": {…}} | null}',
  },
  list: { usage: 'dnsseal list [--name PATTERN] [--address IP|CIDR] [--channel NAME] [--table ID] [--json]', summary: 'Show live protected entries (asks the running daemon).' },
  status: { usage: 'dnsseal status [--json]', summary: 'Show mode, upstreams, channels and SA state, map fill, counters (asks the running daemon).' },
  flush: {
    usage: 'dnsseal flush [--channel NAME] [--table ID] [--name PATTERN] [--address IP|CIDR] [--json] | dnsseal flush --cache [--name PATTERN] [--json]',
    summary: 'Withdraw entries now: those every given filter selects (filters combine), or all non-static ones without a filter. An unknown channel or table is refused (exit 1) and nothing is flushed. With --cache: empty the answer cache (or drop the answers for the names PATTERN selects) instead.',
  },
  reload: {
    usage: 'dnsseal reload [--json]',
    summary: 'Make the daemon re-read its config (same as SIGHUP); an invalid file leaves the old policy running (exit 1).',
    more:
      'The reply: source, tables, rules, channels, statics (the new configuration); released (names the new rules no longer protect, let go), moved (entries moved in place to another channel), ' +
      'withdrawn (entries left with no name: retired, still in the map, never clear, until retire passes with no packet); channelsLoaded, channelsReplaced, channelsUnloaded (in strongSwan); ' +
      'listenAdded, listenRemoved; applied (the changed keys applied live); restartNeeded (changed keys only a restart applies: their running values stay, and dnsseal status names them).',
  },
  log: {
    usage: 'dnsseal log queries on|off [--json]',
    summary: 'Switch the query log of the running daemon (one line per query, see log_queries) until a reload changes log_queries.',
    args: { min: 2, max: 2, name: 'queries on|off' },
  },
  down: {
    usage: 'dnsseal down [--json]',
    summary: 'Stop the daemon and remove its kernel state. With no daemon running, detaches the eBPF programs and removes the pinned maps directly.',
  },
  'install-unit': {
    usage: 'dnsseal install-unit [--systemd|--openwrt] [--prefix DIR] [--binary PATH] [--print] [--force]',
    summary: 'Install the embedded systemd unit or OpenWrt init script, with this binary\'s path in it. Stopping the service keeps the leak guard (fails closed).',
  },
  'resolver-setup': {
    usage: 'dnsseal resolver-setup [--print|--apply|--undo] [--listen ADDR | --config FILE] [--root DIR]',
    summary: 'Point the system resolver at dnsseal: a systemd-resolved drop-in (resolved keeps 127.0.0.53 and 127.0.0.54, so dnsseal listens elsewhere, e.g. 127.0.0.153) or /etc/resolv.conf (backed up; --undo restores).',
  },
  'config-reference': { usage: 'dnsseal config-reference', summary: 'Print the configuration reference (markdown): every key and flag, the sections\' fields, the rule patterns.' },
  'config-default': { usage: 'dnsseal config-default', summary: 'Print the embedded default configuration (a commented starting point).' },
  man: {
    usage: 'dnsseal man',
    summary: 'Print the manual page dnsseal(8) (roff), made from the same tables as this help and the reference: read it with "dnsseal man | man -l -".',
  },
  version: { usage: 'dnsseal version', summary: 'Print the version.' },
  help: { usage: 'dnsseal help [COMMAND]', summary: 'This text, or the help of one command.', args: { max: 1, name: 'COMMAND' } },
};

const WIDTH = 100;

/** Greedy word wrap to `width` columns; continuation lines are prefixed with `indent`. */
export function wrap(text: string, width: number, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join(`\n${indent}`);
}

function flagLines(flags: Omit<FlagDescriptor, 'commands'>[]): string[] {
  const rows = flags.map((f) => [`--${f.name}${f.arg ? ` ${f.arg}` : ''}${f.repeatable ? ' …' : ''}`, `${f.help}${f.default ? ` [default: ${f.default}]` : ''}`]);
  const w = Math.min(40, Math.max(...rows.map((r) => r[0]!.length)));
  const pad = ' '.repeat(w + 4);
  return rows.map(([a, b]) => {
    const body = wrap(b!, WIDTH - pad.length, pad);
    return a!.length > w ? `  ${a}\n${pad}${body}` : `  ${a!.padEnd(w)}  ${body}`;
  });
}

export const RULES = `Rules (first match in table order wins; the query name and every CNAME target are tried):
  exact      taro.nec.co.jp     only that name
  suffix     *.myfriends.com    myfriends.com and every name under it
  subdomain  **.myfriends.com   a.myfriends.com, a.b.myfriends.com — NOT the apex myfriends.com
  prefix     sato.*             sato, sato.com, sato.co.jp (first label) — not a.sato.com
  infix      *.biglobe.*        biglobe.ne.jp, www.biglobe, www.biglobe.ne.jp (the labels anywhere)
  "*" is any number of labels, none included; "**." is one or more.
  Case-insensitive, trailing dot ignored, Unicode names compared as xn-- A-labels.
  Quote patterns in YAML and in the shell: a leading * is special to both.`;

export const EXAMPLES = `Examples:
  dnsseal run                                   # embedded default config (127.0.0.53:53)
  mkdir -p /etc/dnsseal; dnsseal config-default > /etc/dnsseal/dnsseal.yaml   # then edit the rules
  dnsseal check --config /etc/dnsseal/dnsseal.yaml
  dnsseal run --upstream 9.9.9.9 --channel hub=tunnel:203.0.113.1 \\
              --protect '*.corp.example=hub'             # corp.example and every name under it
  dnsseal explain git.corp.example --config /etc/dnsseal/dnsseal.yaml --client 10.1.2.3
  dnsseal explain www.partner.test --channel p=peer,esp=chacha20poly1305 \\
              --protect '*.partner.test=p' --json
  dnsseal list --name '*.corp.example' --json`;

const EXITS = ['Exit codes:', ...EXIT_MEANINGS.map(([code, what]) => `  ${code}  ${wrap(what, WIDTH - 5, '     ')}`)].join('\n');

/** The policy server has no embedded default: its --config is required (src/policy-server/command.ts). */
const POLICY_SERVER_CONFIG_FLAG: FlagDescriptor = {
  ...CONFIG_FILE_FLAG,
  default: undefined,
  help: 'YAML config file, required: the rule tables, clients, channels and tsig_keys it answers with, and its serve: section. There is no embedded default for the policy server.',
};

const readsConfig = (command: string) => (WITH_POLICY_SERVER as readonly string[]).includes(command);

export function renderHelp(command?: string): string {
  if (command && COMMANDS[command]) {
    const c = COMMANDS[command];
    const own = COMMAND_FLAGS[command] ?? [];
    const settings = settingFlagsOf(command).map((f) => (f === CONFIG_FILE_FLAG && command === 'policy-server' ? POLICY_SERVER_CONFIG_FLAG : f));
    const lines = [`Usage: ${c.usage}`, '', wrap(c.summary, WIDTH)];
    if (c.more) lines.push('', wrap(c.more, WIDTH));
    if (own.length) lines.push('', 'Flags:', ...flagLines(own));
    if (readsConfig(command)) lines.push('', 'Configuration flags (override the file):', ...flagLines(settings), '', RULES);
    else if (settings.length) lines.push('', 'Configuration flags (where to find the daemon and its state):', ...flagLines(settings));
    if (!own.length && !settings.length) lines.push('', 'Flags: none.');
    lines.push('', 'Any other flag is refused (exit 1) before the command does anything.', '', EXITS, '');
    return lines.join('\n');
  }
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'dnsseal — a DNS proxy that encrypts traffic by domain name.',
    'Name rules decide which resolved addresses are protected; the addresses enter the kernel map',
    'before the answer is released, and IPsec (XFRM/strongSwan) encrypts traffic to them.',
    '',
    'Usage: dnsseal COMMAND [ARGS] [FLAGS]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${wrap(c.summary, WIDTH - width - 4, ' '.repeat(width + 4))}`),
    '',
    `Configuration flags (${CONFIG_COMMANDS.join(', ')}, and policy-server the part "dnsseal help policy-server" lists; every config key is a flag and flags win):`,
    ...flagLines([CONFIG_FILE_FLAG, ...SETTING_FLAGS]),
    '',
    RULES,
    '',
    'Channels: tunnel = through a hub gateway; peer = IKE straight to the resolved address, the',
    'peer proving the queried name (%name) or a fixed identity. ESP is AEAD only (aes128gcm16,',
    'aes256gcm16, chacha20poly1305, …); DES, 3DES and CBC are refused.',
    '',
    EXAMPLES,
    '',
    EXITS,
    '',
    'Each command takes only its own flags: "dnsseal help COMMAND" lists them. Every configuration',
    'key: "dnsseal config-reference"; a commented starting point: "dnsseal config-default"; the',
    'manual page: "dnsseal man | man -l -".',
    '',
  ].join('\n');
}
