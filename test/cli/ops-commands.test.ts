/** install-unit and resolver-setup through the CLI: flags, output, exit codes (temp trees only). */
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './fixtures.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'dnsseal-cli-ops-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('cli/ops-commands', () => {
  test('prints the systemd unit with the given binary when --print is set', async () => {
    const h = await cli(['install-unit', '--systemd', '--print', '--binary', '/opt/dnsseal/bin/dnsseal']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^ExecStart=\/opt\/dnsseal\/bin\/dnsseal run --config/m);
  });

  test('writes the OpenWrt script executable below --prefix when asked to install it', async () => {
    const prefix = tmp();
    const h = await cli(['install-unit', '--openwrt', `--prefix=${prefix}`, '--binary', '/usr/sbin/dnsseal']);
    expect(h.code).toBe(0);
    const f = join(prefix, 'etc/init.d/dnsseal');
    expect(h.out).toContain(`wrote ${f}`);
    expect(statSync(f).mode & 0o777).toBe(0o755);
    expect(readFileSync(f, 'utf8')).toStartWith('#!/bin/sh /etc/rc.common');
  });

  test('leaves an edited unit alone unless --force, which keeps the old one beside it', async () => {
    const prefix = tmp();
    const argv = ['install-unit', '--systemd', `--prefix=${prefix}`, '--binary', '/usr/sbin/dnsseal'];
    const f = join(prefix, 'etc/systemd/system/dnsseal.service');
    expect((await cli(argv)).code).toBe(0);
    const again = await cli(argv);
    expect(again.code).toBe(0);
    expect(again.out).toContain(`${f} is up to date`);
    const unit = readFileSync(f, 'utf8');
    writeFileSync(f, unit.replace('[Service]', '[Service]\nNice=-5'));
    const refused = await cli(argv);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`${f} exists and differs`);
    expect(readFileSync(f, 'utf8')).toContain('Nice=-5');
    const forced = await cli([...argv, '--force']);
    expect(forced.code).toBe(0);
    expect(forced.out).toContain(`the old one is kept as ${f}.dnsseal-old`);
    expect(readFileSync(f, 'utf8')).toBe(unit);
    expect(readFileSync(`${f}.dnsseal-old`, 'utf8')).toContain('Nice=-5');
  });

  test.each([
    [['install-unit', '--systemd', '--openwrt', '--print'], 'exclude each other'],
    [['install-unit', '--bogus'], 'unknown flag'],
    [['install-unit', '--prefix'], 'needs a value'],
    [['resolver-setup', '--apply', '--undo'], 'exclude each other'],
    [['resolver-setup', 'now'], 'unexpected argument'],
  ])('exits 1 with a usage message when given %p', async (argv, msg) => {
    const h = await cli(argv);
    expect(h.code).toBe(1);
    expect(h.err).toContain(msg);
  });

  test('shows its flags when asked for help on install-unit', async () => {
    const h = await cli(['install-unit', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('--prefix DIR');
  });

  test('prints the plan and changes nothing by default, applies and undoes when asked', async () => {
    const root = tmp();
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/resolv.conf'), 'nameserver 192.0.2.53\n');
    const p = await cli(['resolver-setup', '--root', root, '--listen', '127.0.0.53']);
    expect(p.code).toBe(0);
    expect(p.out).toContain('backend: resolv.conf');
    expect(p.out).toContain('would write /etc/resolv.conf:');
    expect(readFileSync(join(root, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 192.0.2.53\n');
    const a = await cli(['resolver-setup', '--apply', '--root', root, '--listen', '127.0.0.53']);
    expect(a.out).toContain('backed up /etc/resolv.conf to /etc/resolv.conf.dnsseal-backup');
    expect(readFileSync(join(root, 'etc/resolv.conf'), 'utf8')).toContain('nameserver 127.0.0.53\n');
    const u = await cli(['resolver-setup', '--undo', '--root', root]);
    expect(u.out).toContain('restored /etc/resolv.conf');
    expect(readFileSync(join(root, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 192.0.2.53\n');
  });

  test('reads the listen address from --config and refuses it as a config error (exit 1) when resolved owns it', async () => {
    const root = tmp();
    mkdirSync(join(root, 'run/systemd/resolve'), { recursive: true });
    const h = await cli(['resolver-setup', '--root', root, '--config', '/etc/d.yaml'], { files: { '/etc/d.yaml': 'listen: [127.0.0.53:53]\nupstreams:\n  default: 192.0.2.1\n' } });
    expect(h.code).toBe(1);
    expect(h.err).toContain('systemd-resolved runs here');
    expect(h.err).toContain('--listen 127.0.0.153:53');
  });
});
