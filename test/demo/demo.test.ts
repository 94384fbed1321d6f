/**
 * `make demo` non-interactively (root): runs test/demo/demo.sh against dist/dnsseal and checks
 * its result lines — the protected name registered, the guard dropping (> 0) while the WAN
 * capture saw zero clear packets to the protected address, the unprotected name in clear —
 * and that nothing is left behind (namespaces, pins), also when interrupted with SIGINT.
 */
import { describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const REPO = resolve(import.meta.dir, '../..');
const SCRIPT = resolve(import.meta.dir, 'demo.sh');
const PIN_ROOT = '/sys/fs/bpf/dnsseal';
const PREFIX = 'dsdemo-';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync(resolve(REPO, 'dist/dnsseal'))) return 'dist/dnsseal is not built (make build)';
  for (const b of ['knotd', 'tcpdump', 'dig', 'ping', 'curl', 'nsenter']) {
    if (!Bun.which(b, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' })) return `${b} is missing (make deps)`;
  }
  if (!existsSync('/usr/lib/ipsec/charon')) return '/usr/lib/ipsec/charon is missing (strongswan-charon)';
  if (existsSync(PIN_ROOT)) return `${PIN_ROOT} exists (a dnsseal runs here); the demo uses that pin root`;
  return undefined;
}

const skip = skipReason();
if (skip) console.log(`demo: skipped — ${skip}`);

function leftovers(): { netns: string[]; pins: boolean } {
  const out = Bun.spawnSync(['ip', 'netns', 'list']).stdout.toString();
  return { netns: out.split('\n').filter((l) => l.startsWith(PREFIX)), pins: existsSync(PIN_ROOT) };
}

/** The `DEMO: key rest` lines as key → rest (the last one wins). */
function results(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of out.split('\n')) {
    const r = /^DEMO: (\S+)\s*(.*)$/.exec(l);
    if (r) m.set(r[1]!, r[2]!);
  }
  return m;
}

const num = (text: string | undefined, key: string) => Number(new RegExp(`${key}=(\\d+)`).exec(text ?? '')?.[1] ?? NaN);

describe.skipIf(skip !== undefined)('demo', () => {
  test('shows the guard dropping and zero clear packets to the protected name when run non-interactively', async () => {
    const p = Bun.spawn([SCRIPT, '--yes'], { cwd: REPO, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    const code = await p.exited;
    if (code !== 0) console.log(out + err);
    expect(code).toBe(0);
    const r = results(out);
    expect(r.get('daemon')).toBe('started datapath=ebpf');
    expect(r.get('resolved')).toBe('secure.demo.test=203.0.113.10 www.demo.test=203.0.113.20');
    expect(r.get('protected-registered')).toBe('203.0.113.10 channel=hub');
    expect(r.has('unprotected-registered')).toBe(false);
    expect(num(r.get('queries-total'), 'after')).toBeGreaterThan(num(r.get('queries-total'), 'before'));
    expect(num(r.get('guard-drops'), 'delta')).toBeGreaterThan(0);
    expect(num(r.get('guard-drops-without-xfrm'), 'delta')).toBeGreaterThan(0);
    expect(r.get('wan-clear-packets-to-protected')).toBe('0');
    expect(Number(r.get('wan-clear-packets-to-unprotected'))).toBeGreaterThan(0);
    expect(r.get('cleanup')).toBe('netns-left=0 pins-left=0 procs-left=0');
    expect(r.has('done')).toBe(true);
    expect(leftovers()).toEqual({ netns: [], pins: false });
  }, 120_000);

  test('leaves no namespaces or pins behind when interrupted with SIGINT', async () => {
    const p = Bun.spawn([SCRIPT, '--yes'], { cwd: REPO, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    let out = '';
    const reader = p.stdout.getReader();
    const dec = new TextDecoder();
    while (!out.includes('DEMO: daemon started')) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value);
    }
    expect(out).toContain('DEMO: daemon started');
    expect(leftovers().netns.length).toBe(3); // it was running
    p.kill('SIGINT');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value);
    }
    expect(await p.exited).toBe(130);
    expect(results(out).get('cleanup')).toBe('netns-left=0 pins-left=0 procs-left=0');
    expect(leftovers()).toEqual({ netns: [], pins: false });
  }, 120_000);
});
