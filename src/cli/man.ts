/**
 * The manual page dnsseal(8), in roff (`dnsseal man`; `make man` writes build/dnsseal.8 for the
 * packages). Made from the same tables as `--help` and the reference: the command table
 * (help.ts COMMANDS, flags.ts COMMAND_FLAGS) and the table of settings (config/settings.ts),
 * so a new command, flag or setting is in the manual without writing it twice.
 */
import { COMMAND_FLAGS, settingFlagsOf } from '../config/flags.ts';
import { CONFIG_COMMANDS, MODES, WITH_POLICY_SERVER, type FieldDoc, type FlagDescriptor } from '../config/setting.ts';
import { CONFIG_FILE_FLAG, SETTINGS } from '../config/settings.ts';
import { EXIT_MEANINGS } from './exit-codes.ts';
import { COMMANDS, EXAMPLES, RULES } from './help.ts';

/**
 * Plain text → roff: backslashes escaped, other than ASCII as `\[uXXXX]` (the page is read by
 * troffs that take no UTF-8), a line never starts with a control character.
 */
function esc(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/[^\x00-\x7f]/gu, (ch) => `\\[u${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`)
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

/** Markdown-ish doc text (`code` spans) → roff, code in bold with real minus signs. */
function md(text: string): string {
  // code spans first, each as one piece, so an asterisk inside one (`*.corp.example`) is not emphasis
  return esc(text)
    .split(/(`[^`]+`)/)
    .map((part) =>
      part.startsWith('`') && part.endsWith('`') && part.length > 1
        ? `\\fB${part.slice(1, -1).replace(/-/g, '\\-')}\\fR`
        : part.replace(/\*\*([^*\s][^*]*?)\*\*/g, '\\fB$1\\fR').replace(/(^|[\s(])\*([^*\s][^*]*?)\*(?=[\s).,;:]|$)/g, '$1\\fI$2\\fR'),
    )
    .join('');
}

const flagText = (f: Pick<FlagDescriptor, 'name' | 'arg'>) => `\\fB\\-\\-${f.name.replace(/-/g, '\\-')}\\fR${f.arg ? ` \\fI${esc(f.arg).replace(/-/g, '\\-')}\\fR` : ''}`;

function flagItems(flags: Array<Omit<FlagDescriptor, 'commands'>>): string[] {
  return flags.flatMap((f) => ['.TP', `${flagText(f)}${f.repeatable ? ' (repeatable)' : ''}`, `${md(f.help)}${f.default ? ` Default: ${md(f.default)}.` : ''}`]);
}

function commands(): string[] {
  const out: string[] = ['.SH COMMANDS', 'Each command takes only its own flags; any other flag, or a missing or extra argument, is refused (exit 1) before anything is done.'];
  for (const [name, c] of Object.entries(COMMANDS)) {
    out.push('.TP', `\\fB${esc(c.usage).replace(/-/g, '\\-')}\\fR`, md(c.summary));
    if (c.more) out.push('.IP', md(c.more));
    const own = COMMAND_FLAGS[name] ?? [];
    const settings = settingFlagsOf(name);
    if (own.length || settings.length) {
      out.push('.RS');
      out.push(...flagItems(own));
      if ((CONFIG_COMMANDS as readonly string[]).includes(name)) {
        out.push('.TP', `${flagText(CONFIG_FILE_FLAG)}, and every configuration flag`, 'See \\fBCONFIGURATION\\fR: each key is also a flag, and flags win over the file.');
      } else if ((WITH_POLICY_SERVER as readonly string[]).includes(name)) {
        const keys = SETTINGS.filter((s) => s.commands.includes(name)).map((s) => `\\fB${esc(s.key)}\\fR`);
        out.push('.TP', `${flagText(CONFIG_FILE_FLAG)}, and the configuration flags of ${keys.join(', ')}`, 'See \\fBCONFIGURATION\\fR; any other key or setting flag is refused by name.');
      } else {
        out.push(...flagItems(settings));
      }
      out.push('.RE');
    }
  }
  return out;
}

function fields(list: FieldDoc[]): string[] {
  return list.flatMap((f) => ['.TP', `\\fB${esc(f.key)}\\fR (${md(f.type)}${f.default ? `; default ${md(f.default)}` : ''})`, md(f.doc)]);
}

function configuration(): string[] {
  const out: string[] = [
    '.SH CONFIGURATION',
    'dnsseal reads one YAML file (\\fB\\-\\-config\\fR \\fIFILE\\fR); without one it uses the embedded default, which \\fBdnsseal config\\-default\\fR prints.',
    'Every key is also a flag, and flags win over the file; the flag of a true/false key is a switch, and \\fB\\-\\-log\\-queries=false\\fR turns off what the file sets. Unknown keys are errors, and every error names \\fIfile\\fR:\\fIline\\fR.',
    '\\fBdnsseal check\\fR reports every problem at once, and warns about rules that can never win, settings the mode ignores, interfaces that do not exist, a public listen address without allow_clients (other clients get REFUSED) and an open resolver.',
    '.SS Keys',
  ];
  for (const s of SETTINGS) {
    const flags = s.kind === 'section' ? s.flags : s.flag ? [s.flag] : [];
    const modes = s.modes.length === MODES.length ? 'all modes' : `modes ${s.modes.join(', ')}`;
    const facts = [`Type ${md(s.typeDoc)}`, ...(s.defaultDoc ? [`default ${md(s.defaultDoc)}`] : []), modes];
    out.push('.TP', `\\fB${esc(s.key)}\\fR`, md(s.doc), '.br', `${facts.join('; ')}.`);
    for (const f of flags) out.push('.br', `Flag ${flagText(f)}${f.repeatable ? ' (repeatable)' : ''}: ${md(f.help)}`);
  }
  for (const s of SETTINGS) {
    if (s.kind === 'section') out.push(`.SS ${esc(s.key)}`, md(s.doc), ...fields(s.fields));
  }
  return out;
}

/** A preformatted block (rules, examples), kept as written (`-` a real minus: flags copy and paste). */
function verbatim(text: string): string[] {
  return ['.nf', '.RS 2', esc(text).replace(/-/g, '\\-'), '.RE', '.fi'];
}

function files(): string[] {
  const def = (key: string) => {
    const s = SETTINGS.find((x) => x.key === key);
    return s?.kind === 'value' ? String(s.default) : '';
  };
  return [
    '.SH FILES',
    '.TP',
    `\\fI${def('control')}\\fR`,
    'The control socket (mode 0600) that \\fBlist\\fR, \\fBstatus\\fR, \\fBflush\\fR, \\fBreload\\fR and \\fBdown\\fR talk to (\\fBcontrol\\fR).',
    '.TP',
    `\\fI${def('pin_root')}\\fR`,
    'The pinned eBPF maps, programs and links; they outlive the daemon (a restart keeps protecting) and \\fBdnsseal down\\fR removes them (\\fBpin_root\\fR).',
    '.TP',
    `\\fI${def('vici_socket')}\\fR`,
    "strongSwan charon's VICI socket, through which the IPsec connections are loaded (\\fBvici_socket\\fR).",
    '.TP',
    '\\fI/etc/resolv.conf\\fR',
    'Where the default upstream comes from when none is configured.',
  ];
}

export function renderManPage(version: string): string {
  const lines: string[] = [
    `.TH DNSSEAL 8 "" "dnsseal ${esc(version)}" "System Administration"`,
    '.SH NAME',
    'dnsseal \\- a DNS proxy that encrypts traffic by domain name',
    '.SH SYNOPSIS',
    '.B dnsseal',
    '.I COMMAND',
    '[\\fIARGS\\fR] [\\fIFLAGS\\fR]',
    '.SH DESCRIPTION',
    'dnsseal is a DNS proxy: policy is written in names (everything under \\fB*.corp.example\\fR goes through an IPsec hub, \\fBsato.*\\fR is a partner reached directly),',
    'and the addresses in a matching answer are written into an eBPF map \\fIbefore\\fR the answer reaches the client.',
    'eBPF programs steer packets to those addresses into XFRM (kernel IPsec) protected paths, keyed by strongSwan; all other traffic is untouched.',
    'A leak guard on the uplinks drops any packet to a protected address that would leave in clear, so every failure fails closed.',
    '.PP',
    `Modes: \\fBhost\\fR (on the node whose applications talk), \\fBgateway\\fR (on the clients' DNS server and default gateway), \\fBintercept\\fR (on an encryption node that hands out intercept addresses).`,
    ...commands(),
    ...configuration(),
    '.SH RULE PATTERNS',
    ...verbatim(RULES),
    '.SH EXIT STATUS',
    ...EXIT_MEANINGS.flatMap(([code, what]) => ['.TP', `\\fB${code}\\fR`, md(what)]),
    ...files(),
    '.SH EXAMPLES',
    ...verbatim(EXAMPLES.replace(/^Examples:\n/, '')),
    '.SH SEE ALSO',
    '\\fBswanctl\\fR(8), \\fBcharon\\fR(8), \\fBbpftool\\fR(8), \\fBtc\\fR(8), \\fBsystemd\\-resolved\\fR(8), \\fBresolv.conf\\fR(5)',
    '.PP',
    '\\fBdnsseal config\\-reference\\fR prints the configuration reference as markdown; \\fBdnsseal help\\fR \\fICOMMAND\\fR the help of one command.',
    '',
  ];
  return lines.join('\n');
}
