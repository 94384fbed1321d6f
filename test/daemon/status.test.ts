/**
 * `status` from a running daemon (fake data path, no IPsec, loopback only): the documented
 * snake_case document, figures that follow the registry and the reloads — a reload that renamed
 * a channel shows the new name, and what a reload could not apply stays listed as "restart
 * needed" — and the human form built from it.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatStatus, OUTCOMES, SERVFAIL_REASONS } from '../../src/cli/status-format.ts';
import { loadConfig } from '../../src/config/load.ts';
import { controlRequest } from '../../src/control/client.ts';
import type { StatusReport } from '../../src/daemon/status.ts';
import { HUB, reg } from '../registry/helpers.ts';
import { startDaemon, type StartedDaemon } from './start.ts';

const dirs: string[] = [];
const running: StartedDaemon[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) {
    d.signals.emit('SIGTERM');
    await d.exit;
  }
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function yaml(control: string, channel: string, minHold: number): string {
  return [
    'mode: host',
    'listen: [127.0.0.1:5399]',
    'upstreams: { default: 127.0.0.1:9, corp: "[2001:db8::53]:5353" }',
    'datapath: fake',
    `control: ${control}`,
    `min_hold: ${minHold}`,
    'channels:',
    `  ${channel}: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }`,
    '  partner: { kind: peer, esp: aes256gcm16 }',
    'tables:',
    '  default:',
    `    - { match: "*.corp.example", channel: ${channel} }`,
    '    - { match: "*.partner.example", channel: partner }',
    '',
  ].join('\n');
}

async function daemon() {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-status-'));
  dirs.push(dir);
  const file = join(dir, 'dnsseal.yaml');
  const control = join(dir, 'control.sock');
  writeFileSync(file, yaml(control, 'hub', 60));
  const values = new Map([['config', [file]]]);
  const load = () => ({ ...loadConfig(values), listen: ['127.0.0.1:0'] });
  const d = await startDaemon(load(), { reloadConfig: load, version: '1.2.3' });
  running.push(d);
  const status = async () => (await controlRequest(control, { cmd: 'status' })) as StatusReport;
  return { d, file, control, status };
}

describe('daemon/status', () => {
  test('reports version, uptime, config, rules, entries, channels and upstreams when the daemon runs', async () => {
    const { d, file, status } = await daemon();
    await d.info.registry.register(reg({ addrs: ['192.0.2.10', '192.0.2.11'], names: ['www.corp.example'], channel: { ...HUB, id: 1 } }));
    const s = await status();
    expect(s.version).toBe('1.2.3');
    expect(s.pid).toBe(process.pid);
    expect(s.uptime_s).toBeGreaterThanOrEqual(0);
    expect(s.mode).toBe('host');
    expect(s.config).toMatchObject({ source: file, changed_since_load: false });
    expect(typeof s.config.modified_at).toBe('string');
    expect(s.rules).toEqual({ tables: 1, rules: 2, clients: 0, statics: 0 });
    expect(s.entries).toMatchObject({ total: 2, live: 2, retired: 0, blocked: 0, static: 0, by_channel: { hub: 2 } });
    expect(s.map.used).toBe(2);
    expect(s.datapath).toEqual({ kind: 'fake', up: true, reason: null });
    expect(s.ipsec).toEqual({ kind: 'none', vici: { state: 'none', since: null, last_error: null } });
    expect(s.channels.map((c) => [c.name, c.kind, c.protocol, c.state])).toEqual([
      ['hub', 'tunnel', 'ipsec', 'down'],
      ['partner', 'peer', 'ipsec', 'down'],
    ]);
    expect(s.upstreams).toEqual([
      { name: 'default', index: 0, server: '127.0.0.1:9', transport: 'dns', address: '127.0.0.1', port: 9, health: 'up', since: expect.any(String), latency_ms: null, answers: 0, failures: {}, last_error: null, errno: null },
      { name: 'corp', index: 0, server: '[2001:db8::53]:5353', transport: 'dns', address: '2001:db8::53', port: 5353, health: 'up', since: expect.any(String), latency_ms: null, answers: 0, failures: {}, last_error: null, errno: null },
    ]);
    expect(s.listen.length).toBe(2);
    expect(s.reload).toEqual({ last_at: null, last_ok: null, last_error: null, restart_needed: [] });
    expect(s.upstream_latency.buckets.at(-1)!.le).toBeNull();
    expect(s.cache).toMatchObject({ enabled: true, entries: 0, max_entries: 10000, hits: 0, misses: 0, hit_ratio: null });
    expect(s.tls).toBeNull();
  });

  test('shows the new channel name and keeps "restart needed" when a reload renamed a channel and changed min_hold', async () => {
    const { file, control, status } = await daemon();
    writeFileSync(file, yaml(control, 'hub2', 120));
    const r = (await controlRequest(control, { cmd: 'reload' })) as { restartNeeded: string[] };
    expect(r.restartNeeded).toEqual(['min_hold']);
    const s = await status();
    expect(s.channels.map((c) => c.name)).toEqual(['hub2', 'partner']);
    expect(s.reload).toMatchObject({ last_ok: true, last_error: null, restart_needed: ['min_hold'] });
    // still there on the next look: it holds until a restart
    expect((await status()).reload.restart_needed).toEqual(['min_hold']);
  });

  test('says the file changed since it was loaded and keeps the last error when a reload is refused', async () => {
    const { file, control, status } = await daemon();
    writeFileSync(file, 'mode: nowhere\n');
    const future = new Date(Date.now() + 60_000);
    utimesSync(file, future, future);
    await expect(controlRequest(control, { cmd: 'reload' })).rejects.toMatchObject({ code: 'reload_invalid' });
    const s = await status();
    expect(s.config.changed_since_load).toBe(true);
    expect(s.reload.last_ok).toBe(false);
    expect(s.reload.last_error).toContain('dnsseal.yaml:1: must be one of host, gateway, intercept');
  });

  test('prints the document for a person with outcomes explained and histogram bounds when asked without --json', async () => {
    const { status } = await daemon();
    const text = formatStatus(await status(), Date.now());
    expect(text).toStartWith('dnsseal 1.2.3, mode host, up ');
    for (const want of ['config ', 'entries ', 'map ', 'data path ', 'channels:', 'upstreams:', '127.0.0.1:9', '[2001:db8::53]:5353', '0 of 10,000 answers', 'misses 0', 'queries (0 since start):', 'answered; no rule protects the name', '≤ 0.5 ms', '> 2.5 s']) {
      expect(text).toContain(want);
    }
  });

  test('documents every field of the document in the README, and no other, when the daemon runs', async () => {
    const { d, status } = await daemon();
    await d.info.registry.register(reg({ addrs: ['192.0.2.10'], names: ['www.corp.example'], channel: { ...HUB, id: 1 } }));
    const report = await status();
    const readme = await Bun.file(join(import.meta.dir, '../../README.md')).text();
    const block = /<!-- BEGIN status-fields[^>]*-->\n([\s\S]*?)<!-- END status-fields -->/.exec(readme);
    expect(block).not.toBeNull();
    const documented = [...block![1]!.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.sort()).toEqual(fieldPaths(report).sort());
  });

  test('explains every outcome and SERVFAIL reason the document counts, in the README as in the CLI', async () => {
    const { status } = await daemon();
    const report = await status();
    expect(Object.keys(OUTCOMES).sort()).toEqual(Object.keys(report.queries).sort());
    expect(Object.keys(SERVFAIL_REASONS).sort()).toEqual(Object.keys(report.servfail).sort());
    const readme = await Bun.file(join(import.meta.dir, '../../README.md')).text();
    const md = (t: string) => t.replace('use-application-dns.net', '`use-application-dns.net`').replace('upstream_timeout', '`upstream_timeout`').replace('allow_clients', '`allow_clients`');
    for (const [k, v] of Object.entries(OUTCOMES)) expect(readme).toContain(`| \`${k}\` | ${md(v)} |`);
    for (const [k, v] of Object.entries(SERVFAIL_REASONS)) expect(readme).toContain(`| SERVFAIL \`${k}\` | ${md(v)} |`);
  });
});

/** Objects that are maps (their keys are data: channels, outcomes, reasons) or slots end a path. */
const LEAVES = new Set(['by_channel', 'queries', 'servfail', 'upstream_ignored', 'tcp_closed', 'client_subnet', 'tls', 'listen', 'restart_needed', 'failures', 'evictions', 'not_cached']);

/** `config.source`, `channels[].name`, … for every field of the document. */
function fieldPaths(v: unknown, path = ''): string[] {
  const key = path.split('.').at(-1)!.replace('[]', '');
  if (path && LEAVES.has(key)) return [path];
  if (Array.isArray(v)) {
    expect({ path, empty: v.length === 0 }).toEqual({ path, empty: false }); // each array shows its items
    return fieldPaths(v[0], `${path}[]`);
  }
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => fieldPaths(x, path ? `${path}.${k}` : k));
  return [path];
}

