/**
 * Commands that set up the machine around dnsseal rather than talk to it:
 *   install-unit    write (or print) the embedded systemd unit / OpenWrt init script
 *   resolver-setup  point systemd-resolved or /etc/resolv.conf at dnsseal, or undo that
 * They take their own flags (none of them is a config key), parsed here.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { applyResolverPlan, detectBackend, planResolverSetup, undoResolverSetup } from '../ops/resolver-setup.ts';
import { renderUnit, unitTarget, type UnitKind } from '../ops/units/units.ts';
import { ConfigError } from '../util/errors.ts';
import type { CliDeps } from './context.ts';
import { EXIT } from './exit-codes.ts';

export interface OpsFlag {
  name: string;
  arg?: string;
  doc: string;
}

export const OPS_FLAGS: Record<string, OpsFlag[]> = {
  'install-unit': [
    { name: 'systemd', doc: 'The systemd unit (default when /run/systemd/system exists).' },
    { name: 'openwrt', doc: 'The OpenWrt procd init script (default when /etc/openwrt_release exists).' },
    { name: 'prefix', arg: 'DIR', doc: 'Install below DIR (DIR/etc/systemd/system/dnsseal.service, DIR/etc/init.d/dnsseal); default /.' },
    { name: 'binary', arg: 'PATH', doc: 'dnsseal path written into the unit; default: this executable (a `bun` run falls back to the template path).' },
    { name: 'print', doc: 'Print the unit instead of writing it.' },
  ],
  'resolver-setup': [
    { name: 'print', doc: 'Show what --apply would write and why (the default; changes nothing).' },
    { name: 'apply', doc: 'Write the resolved drop-in or the new resolv.conf (backing the old one up).' },
    { name: 'undo', doc: 'Remove the drop-in / restore resolv.conf from its backup.' },
    { name: 'listen', arg: 'ADDR[:53]', doc: "dnsseal's listen address; default: the first listen address of --config, else 127.0.0.53." },
    { name: 'config', arg: 'FILE', doc: 'Read the listen address from this config.' },
    { name: 'root', arg: 'DIR', doc: 'Treat DIR as / (tests, images); default /.' },
  ],
};

/** `--name`, `--name VALUE`, `--name=VALUE` for `cmd`'s flags; the last one given wins. */
export function parseOpsFlags(cmd: string, argv: string[]): Map<string, string> {
  const specs = OPS_FLAGS[cmd]!;
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new ConfigError(cmd, `unexpected argument "${a}" (see "dnsseal help ${cmd}")`);
    const spec = specs.find((f) => f.name === m[1]);
    if (!spec) throw new ConfigError(`--${m[1]}`, `unknown flag for "dnsseal ${cmd}"; see "dnsseal help ${cmd}"`);
    if (!spec.arg) {
      if (m[2] !== undefined) throw new ConfigError(`--${spec.name}`, 'is a switch and takes no value');
      out.set(spec.name, 'true');
    } else if (m[2] !== undefined) {
      out.set(spec.name, m[2]);
    } else {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new ConfigError(`--${spec.name}`, `needs a value: --${spec.name} ${spec.arg}`);
      out.set(spec.name, v);
    }
  }
  return out;
}

function oneOf(cmd: string, flags: Map<string, string>, names: string[]): string | undefined {
  const given = names.filter((n) => flags.has(n));
  if (given.length > 1) throw new ConfigError(cmd, `--${given.join(' and --')} exclude each other`);
  return given[0];
}

/** The path of this dnsseal: the compiled executable, or the template's path under `bun`. */
function selfPath(): string | undefined {
  const exe = process.execPath;
  return /^bun(-debug)?$/.test(basename(exe)) ? undefined : exe;
}

export async function installUnitCommand(argv: string[], deps: CliDeps): Promise<number> {
  const flags = parseOpsFlags('install-unit', argv);
  const chosen = oneOf('install-unit', flags, ['systemd', 'openwrt']);
  let kind: UnitKind;
  if (chosen) kind = chosen as UnitKind;
  else if (existsSync('/etc/openwrt_release')) kind = 'openwrt';
  else if (existsSync('/run/systemd/system')) kind = 'systemd';
  else throw new ConfigError('install-unit', 'cannot tell systemd from OpenWrt here: pass --systemd or --openwrt');
  const binary = flags.get('binary') ?? selfPath() ?? (kind === 'openwrt' ? '/usr/sbin/dnsseal' : '/usr/local/bin/dnsseal');
  const text = renderUnit(kind, binary);
  if (flags.has('print')) {
    deps.io.out(text);
    return EXIT.ok;
  }
  const target = unitTarget(kind);
  const dest = join(resolve(flags.get('prefix') ?? '/'), target.path);
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest, text);
  chmodSync(dest, target.mode);
  deps.io.out(`install-unit: wrote ${dest} (${kind}, binary ${binary})\nnext:\n${target.next.map((c) => `  ${c}\n`).join('')}`);
  return EXIT.ok;
}

export async function resolverSetupCommand(argv: string[], deps: CliDeps): Promise<number> {
  const flags = parseOpsFlags('resolver-setup', argv);
  const action = oneOf('resolver-setup', flags, ['print', 'apply', 'undo']) ?? 'print';
  const root = flags.get('root') ?? '/';
  if (action === 'undo') {
    deps.io.out(undoResolverSetup(root).map((l) => `resolver-setup: ${l}\n`).join(''));
    if (root === '/' && detectBackend(root) === 'systemd-resolved') deps.io.out(restartResolved());
    return EXIT.ok;
  }
  let listen = flags.get('listen');
  if (listen === undefined && flags.has('config')) listen = loadConfig(new Map([['config', [flags.get('config')!]]]), deps.files).listen[0];
  listen ??= '127.0.0.53:53';
  const plan = planResolverSetup(root, listen);
  const out: string[] = [`backend: ${plan.backend}`, `dnsseal address: ${plan.address}:53`, ...plan.notes.map((n) => `note: ${n}`)];
  if (action === 'print') {
    for (const w of plan.writes) out.push(`would write /${w.path}:`, ...w.content.trimEnd().split('\n').map((l) => `  ${l}`));
    out.push('run with --apply to make the change, --undo to take it back');
  } else {
    out.push(...applyResolverPlan(root, plan));
  }
  deps.io.out(out.map((l) => `${l}\n`).join(''));
  if (action === 'apply' && root === '/' && plan.backend === 'systemd-resolved') deps.io.out(restartResolved());
  return EXIT.ok;
}

/** On the real root only: make resolved re-read its drop-ins. */
function restartResolved(): string {
  const r = Bun.spawnSync(['systemctl', 'restart', 'systemd-resolved'], { stdout: 'ignore', stderr: 'pipe' });
  return r.exitCode === 0
    ? 'resolver-setup: restarted systemd-resolved\n'
    : `resolver-setup: could not restart systemd-resolved (${r.stderr.toString().trim() || `exit ${r.exitCode}`}); run: systemctl restart systemd-resolved\n`;
}
