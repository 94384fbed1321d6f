/** The real entry point, spawned: exit codes and messages as an operator's shell sees them. */
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = join(import.meta.dir, '../../src/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'dnsseal-cli-'));
const good = join(dir, 'good.yaml');
const bad = join(dir, 'bad.yaml');
writeFileSync(good, 'upstreams:\n  default: 192.0.2.53\nchannels:\n  hub:\n    kind: tunnel\n    gateway: 192.0.2.1\ntables:\n  default:\n    - match: "*.corp.example"\n      channel: hub\n');
writeFileSync(bad, 'upstreams:\n  default: 192.0.2.53\nchannels:\n  old:\n    kind: peer\n    esp: 3des-sha1\n');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, MAIN, ...args], { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, NO_COLOR: '1' } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe('main', () => {
  test.each([
    [['check', '--config', good], 0, /^OK /, ''],
    [['explain', 'x.corp.example', '--config', good, '--json'], 0, /"pattern":"\*\.corp\.example"/, ''],
    [['version'], 0, /^dnsseal \d+\.\d+\.\d+/, ''],
    [['check', '--config', bad], 1, /^$/, `${bad}:6: channels.old.esp: channel "old": esp "3des-sha1" refused`],
    [['check', '--config', join(dir, 'missing.yaml')], 1, /^$/, '--config: cannot read'],
    [['run', '--listen'], 1, /^$/, '--listen: needs a value'],
    [['explain', 'a.b', '--frobnicate'], 1, /^$/, '--frobnicate: unknown flag for "dnsseal explain"'],
    [['bogus'], 1, /^$/, 'bogus: unknown command'],
    [['flush', '--mode', 'gateway', '--control', join(dir, 'no.sock')], 1, /^$/, '--mode: unknown flag for "dnsseal flush"'],
    [['flush', '--name', 'a.*.b', '--control', join(dir, 'no.sock')], 1, /^$/, '--name: "a.*.b"'],
    [['version', 'now'], 1, /^$/, 'version: unexpected argument "now"'],
    [['help', 'config-reference'], 0, /^Usage: dnsseal config-reference/, ''],
    [['status', '--control', join(dir, 'no.sock')], 3, /^$/, 'not running'],
  ])('exits as documented for %p', (args, code, out, err) => {
    const r = run(...(args as string[]));
    expect(r.err).not.toContain('    at ');
    expect(r.out).toMatch(out as RegExp);
    expect(r.err).toContain(err as string);
    expect(r.code).toBe(code as number);
  });

  test('warns about an interface this network namespace does not have when check reads the real interface list', () => {
    const r = run('check', '--config', good, '--wan', 'nosuch-if0', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { warnings: Array<{ key: string; message: string }> };
    expect(report.warnings.find((w) => w.key === '--wan')?.message).toMatch(/^interface "nosuch-if0" does not exist here \(interfaces: .*\blo\b/);
  });
});
