/**
 * Commands that set up the machine around dnsseal rather than talk to it:
 *   install-unit    write (or print) the embedded systemd unit / OpenWrt init script
 *   resolver-setup  point systemd-resolved or /etc/resolv.conf at dnsseal, or undo that
 * They take their own flags (none of them is a setting; src/config/flags.ts COMMAND_FLAGS).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadChecked } from './config-load.ts';
import { applyResolverPlan, detectBackend, planResolverSetup, undoResolverSetup } from '../ops/resolver-setup.ts';
import { renderUnit, unitTarget, type UnitKind } from '../ops/units/units.ts';
import { ConfigError } from '../util/errors.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';

/** The one of `names` given, if any; more than one is a usage error. */
function oneOf(cmd: string, flags: Map<string, string[]>, names: string[]): string | undefined {
  const given = names.filter((n) => flags.has(n));
  if (given.length > 1) throw new ConfigError(cmd, `--${given.join(' and --')} exclude each other`);
  return given[0];
}

/** The path of this dnsseal: the compiled executable, or the template's path under `bun`. */
function selfPath(): string | undefined {
  const exe = process.execPath;
  return /^bun(-debug)?$/.test(basename(exe)) ? undefined : exe;
}

export async function installUnitCommand(ctx: CliContext): Promise<number> {
  const flag = (name: string) => ctx.args.values.get(name)?.at(-1);
  const chosen = oneOf('install-unit', ctx.args.values, ['systemd', 'openwrt']);
  let kind: UnitKind;
  if (chosen) kind = chosen as UnitKind;
  else if (existsSync('/etc/openwrt_release')) kind = 'openwrt';
  else if (existsSync('/run/systemd/system')) kind = 'systemd';
  else throw new ConfigError('install-unit', 'cannot tell systemd from OpenWrt here: pass --systemd or --openwrt');
  const binary = flag('binary') ?? selfPath() ?? (kind === 'openwrt' ? '/usr/sbin/dnsseal' : '/usr/local/bin/dnsseal');
  const text = renderUnit(kind, binary);
  if (ctx.args.values.has('print')) {
    ctx.io.out(text);
    return EXIT.ok;
  }
  const target = unitTarget(kind);
  const dest = join(resolve(flag('prefix') ?? '/'), target.path);
  const next = `next:\n${target.next.map((c) => `  ${c}\n`).join('')}`;
  const before = existsSync(dest) ? readFileSync(dest, 'utf8') : undefined;
  if (before === text) {
    chmodSync(dest, target.mode);
    ctx.io.out(`install-unit: ${dest} is up to date (${kind}, binary ${binary})\n${next}`);
    return EXIT.ok;
  }
  // an edited unit (or one an older dnsseal wrote) is not replaced unasked, nor lost when it is
  const kept = `${dest}.dnsseal-old`;
  if (before !== undefined && !ctx.args.values.has('force')) {
    throw new ConfigError(
      'install-unit',
      `${dest} exists and differs from the unit this dnsseal would write (edited, or written by another version); nothing written. ` +
        `--print shows the new one; --force replaces it, keeping the old one as ${kept}${kind === 'systemd' ? '. Local changes belong in a drop-in (systemctl edit dnsseal), which install-unit never touches' : ''}`,
    );
  }
  mkdirSync(dirname(dest), { recursive: true });
  if (before !== undefined) writeFileSync(kept, before);
  writeFileSync(dest, text);
  chmodSync(dest, target.mode);
  ctx.io.out(`install-unit: wrote ${dest} (${kind}, binary ${binary})${before !== undefined ? `; the old one is kept as ${kept}` : ''}\n${next}`);
  return EXIT.ok;
}

export async function resolverSetupCommand(ctx: CliContext): Promise<number> {
  const flag = (name: string) => ctx.args.values.get(name)?.at(-1);
  const action = oneOf('resolver-setup', ctx.args.values, ['print', 'apply', 'undo']) ?? 'print';
  const root = flag('root') ?? '/';
  if (action === 'undo') {
    ctx.io.out(undoResolverSetup(root).map((l) => `resolver-setup: ${l}\n`).join(''));
    if (root === '/' && detectBackend(root) === 'systemd-resolved') ctx.io.out(restartResolved());
    return EXIT.ok;
  }
  let listen = flag('listen');
  if (listen === undefined && ctx.args.values.has('config')) listen = loadChecked(new Map([['config', [flag('config')!]]]), ctx).config.listen[0];
  listen ??= '127.0.0.53:53';
  const plan = planResolverSetup(root, listen);
  const out: string[] = [`backend: ${plan.backend}`, `dnsseal address: ${plan.address}:53`, ...plan.notes.map((n) => `note: ${n}`)];
  if (action === 'print') {
    for (const w of plan.writes) out.push(`would write /${w.path}:`, ...w.content.trimEnd().split('\n').map((l) => `  ${l}`));
    out.push('run with --apply to make the change, --undo to take it back');
  } else {
    out.push(...applyResolverPlan(root, plan));
  }
  ctx.io.out(out.map((l) => `${l}\n`).join(''));
  if (action === 'apply' && root === '/' && plan.backend === 'systemd-resolved') ctx.io.out(restartResolved());
  return EXIT.ok;
}

/** On the real root only: make resolved re-read its drop-ins. */
function restartResolved(): string {
  const r = Bun.spawnSync(['systemctl', 'restart', 'systemd-resolved'], { stdout: 'ignore', stderr: 'pipe' });
  return r.exitCode === 0
    ? 'resolver-setup: restarted systemd-resolved\n'
    : `resolver-setup: could not restart systemd-resolved (${r.stderr.toString().trim() || `exit ${r.exitCode}`}); run: systemctl restart systemd-resolved\n`;
}
