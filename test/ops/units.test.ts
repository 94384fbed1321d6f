/**
 * The embedded service definitions: the systemd unit passes `systemd-analyze verify` with
 * ExecStart pointing at the built dist/dnsseal (written by `dist/dnsseal install-unit`), the
 * binary path is substituted everywhere, the OpenWrt script is valid sh.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { renderUnit, unitTarget } from '../../src/ops/units/units.ts';

const DIST = resolve(import.meta.dir, '../../dist/dnsseal');
const ANALYZE = Bun.which('systemd-analyze');
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'dnsseal-units-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function verify(unitPath: string): { code: number; out: string } {
  const r = Bun.spawnSync([ANALYZE!, 'verify', unitPath], { stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

describe('ops/units', () => {
  test.each(['systemd', 'openwrt'] as const)('substitutes the binary path everywhere when rendering %s', (kind) => {
    const text = renderUnit(kind, '/opt/x/dnsseal');
    expect(text).toMatch(kind === 'systemd' ? /^ExecStart=\/opt\/x\/dnsseal run --config/m : /^PROG=\/opt\/x\/dnsseal$/m);
    expect(text).not.toContain('/usr/local/bin/dnsseal');
    expect(text).not.toContain('/usr/sbin/dnsseal');
  });

  test('refuses a binary path the unit cannot carry when it is relative or has spaces', () => {
    expect(() => renderUnit('systemd', 'dnsseal')).toThrow('must be absolute');
    expect(() => renderUnit('systemd', '/opt/my dnsseal')).toThrow('without spaces');
  });

  test('keeps protection on stop and reloads with SIGHUP in the systemd unit', () => {
    const text = renderUnit('systemd', '/usr/local/bin/dnsseal');
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(text).toMatch(/^ExecStopPost=.*DNSSEAL_DOWN_ON_STOP.*dnsseal down/m);
    // down removes what the running config made: its pin_root, vici_socket and intercept_pools
    expect(text).toMatch(/^ExecStopPost=.*\/usr\/local\/bin\/dnsseal down --config \/etc\/dnsseal\/dnsseal\.yaml; fi'$/m);
    expect(text).toContain('RuntimeDirectoryPreserve=yes');
  });

  test('is valid sh when the OpenWrt init script is rendered', () => {
    const d = tmp();
    const f = join(d, 'dnsseal.init');
    writeFileSync(f, renderUnit('openwrt', '/usr/sbin/dnsseal'));
    expect(Bun.spawnSync(['sh', '-n', f]).exitCode).toBe(0);
    expect(unitTarget('openwrt')).toMatchObject({ path: 'etc/init.d/dnsseal', mode: 0o755 });
  });
});

describe('ops/units systemd-analyze', () => {
  if (!ANALYZE) console.log('ops/units: systemd-analyze verify skipped — systemd-analyze is not installed');
  if (!existsSync(DIST)) console.log('ops/units: systemd-analyze verify skipped — dist/dnsseal is not built (make build)');

  test.skipIf(!ANALYZE || !existsSync(DIST))('passes systemd-analyze verify when installed by dist/dnsseal install-unit', () => {
    const prefix = tmp();
    const r = Bun.spawnSync([DIST, 'install-unit', '--systemd', '--prefix', prefix], { stdout: 'pipe', stderr: 'pipe' });
    expect(r.exitCode).toBe(0);
    const unit = join(prefix, 'etc/systemd/system/dnsseal.service');
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(new RegExp(`^ExecStart=${DIST.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} run `, 'm'));
    expect(statSync(unit).mode & 0o777).toBe(0o644);
    const v = verify(unit);
    expect(v).toEqual({ code: 0, out: '' });
  });

  test.skipIf(!ANALYZE || !existsSync(DIST))('fails systemd-analyze verify when ExecStart names a missing binary', () => {
    const prefix = tmp();
    Bun.spawnSync([DIST, 'install-unit', '--systemd', '--prefix', prefix, '--binary', '/nonexistent/dnsseal']);
    const v = verify(join(prefix, 'etc/systemd/system/dnsseal.service'));
    expect(v.code).not.toBe(0);
    expect(v.out).toContain('/nonexistent/dnsseal is not executable');
  });
});
