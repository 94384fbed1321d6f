/**
 * The policy server and the node's settings: it honours the ones it can use as `dnsseal run`
 * does — `allow_clients` (same access list, same default: loopback and the `lan` prefixes;
 * any other sender gets REFUSED), `upstream_source` (its upstream queries leave from it) — and
 * refuses every other one by name, in its file (all at once, each at file:line) and as a flag,
 * instead of accepting it and doing nothing. Rules that name an upstream send their names
 * there, as the proxy's do. The configs go through the real YAML loader.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfigText } from '../../src/config/load.ts';
import { loadPolicyServerConfig } from '../../src/policy-server/config.ts';
import { startPolicyServer, type RunningPolicyServer } from '../../src/policy-server/run.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { randomPort } from '../integration/knot-server.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { ask, CLIENT_502, CLIENT_503, KOJIMA, makeQuery, ProxySide, SECRET, ZONE_TEXT } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-ps-node-'));
writeFileSync(join(dir, 'nec.com.zone'), ZONE_TEXT);
const FILE = join(dir, 'ps.yaml');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const deps = { ...fileDeps, resolvTexts: () => [] };

function text(extra: string, upstream = '127.0.0.1:1'): string {
  return `listen: ["127.0.0.1:${randomPort()}"]
upstreams:
  default: ${upstream}
tsig_keys:
  dnsseal-test: { algorithm: hmac-sha256, secret: "${SECRET}" }
channels:
  hub-a: { kind: tunnel, gateway: 192.0.2.1, identity: hub-a.nec.example, esp: aes256gcm16 }
clients:
  - { cidr: ${CLIENT_502}/32, table: "502" }
tables:
  "502":
    - match: "*.jinji.nec.com"
      channel: hub-a
${extra}serve:
  zone: nec.com.zone
`;
}

const load = (t: string, flags = new Map<string, string[]>()) => loadPolicyServerConfig(FILE, (body, source) => loadConfigText(body, source, flags, deps, 'policy-server'), t);

const clock = new FakeClock(1_795_554_523_000);
let running: RunningPolicyServer | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
});

/** The file text a reload reads. */
let current = '';

async function start(t: string, readAddrs?: (iface: string) => string): Promise<number> {
  current = t;
  running = await startPolicyServer(load(t), { clock, log: silentLogger, load: () => load(current), ...(readAddrs ? { readAddrs } : {}) });
  return running.listeners.find((l) => l.transport === 'udp')!.port;
}

/** The rcode of an unsigned query for `name` sent from `from`. */
async function rcodeFrom(from: string, port: number, transport: 'udp' | 'tcp', name = KOJIMA): Promise<string> {
  const answer = await ask(transport, port, makeQuery(name), from);
  return ({ 0: 'NOERROR', 5: 'REFUSED' } as Record<number, string>)[answer[3]! & 0x0f] ?? `rcode ${answer[3]! & 0x0f}`;
}

describe('policy-server allow_clients', () => {
  test.each(['udp', 'tcp'] as const)('refuses over %s a sender allow_clients leaves out and answers one it lists', async (t) => {
    const port = await start(text(`allow_clients: [${CLIENT_503}/32]\n`));
    expect(await rcodeFrom(CLIENT_502, port, t)).toBe('REFUSED');
    expect(await rcodeFrom(CLIENT_503, port, t)).toBe('NOERROR');
    // nor is a signed query from outside the list answered or annotated
    const v = await new ProxySide(clock, CLIENT_502).query(t, port, KOJIMA);
    expect(v.ok).toBe(false);
  });

  test('takes a changed allow_clients when reloaded', async () => {
    const port = await start(text(`allow_clients: [${CLIENT_503}/32]\n`));
    expect(await rcodeFrom(CLIENT_502, port, 'udp')).toBe('REFUSED');
    current = text(`allow_clients: [${CLIENT_502}/32]\n`);
    expect(await running!.reload()).toBe(true);
    expect(await rcodeFrom(CLIENT_502, port, 'udp')).toBe('NOERROR');
    expect(await rcodeFrom(CLIENT_503, port, 'udp')).toBe('REFUSED');
  });

  test('allows loopback and the lan prefixes, and nothing else, when allow_clients is unset', async () => {
    const ipJson = JSON.stringify([{ addr_info: [{ family: 'inet', local: '10.1.0.1', prefixlen: 24, scope: 'global' }] }]);
    const port = await start(text('lan: [lan0]\n'), (iface) => {
      if (iface !== 'lan0') throw new Error(`Device "${iface}" does not exist.`);
      return ipJson;
    });
    expect(await rcodeFrom(CLIENT_502, port, 'udp')).toBe('NOERROR');
    const acl = running!.server.current().acl!;
    expect([acl.allows('10.1.0.77'), acl.allows('::1'), acl.allows('10.2.0.1'), acl.allows('192.0.2.10')]).toEqual([true, true, false, false]);
  });
});

describe('policy-server upstream_source', () => {
  test('sends its upstream queries from upstream_source when it is set', async () => {
    const up = await FakeUpstream.start((q, t) => t.answerFor(q));
    try {
      const port = await start(text('upstream_source: 127.0.0.9\n', `127.0.0.1:${up.port}`));
      expect(await rcodeFrom(CLIENT_502, port, 'udp', 'outside.example')).toBe('NOERROR');
      expect(up.queries.map((q) => q.address)).toEqual(['127.0.0.9']);
    } finally {
      await up.stop();
    }
  });
});

describe('policy-server forwarding rules', () => {
  test('sends a name to the upstream its rule names and the others to default when a table forwards', async () => {
    const def = await FakeUpstream.start((q, t) => t.answerFor(q));
    const corp = await FakeUpstream.start((q, t) => t.answerFor(q));
    try {
      const yaml = text('', `127.0.0.1:${def.port}\n  corp: 127.0.0.1:${corp.port}`).replace(
        '      channel: hub-a\n',
        '      channel: hub-a\n    - {match: "*.corp.example", upstream: corp}\n    - {match: "*.secure.example", channel: hub-a, upstream: corp}\n',
      );
      const port = await start(yaml);
      for (const name of ['git.corp.example', 'www.secure.example', 'outside.example']) expect(await rcodeFrom(CLIENT_502, port, 'udp', name)).toBe('NOERROR');
      expect(corp.queries.map((q) => q.name)).toEqual(['git.corp.example', 'www.secure.example']);
      expect(def.queries.map((q) => q.name)).toEqual(['outside.example']);
    } finally {
      await def.stop();
      await corp.stop();
    }
  });
});

describe('policy-server node-only settings', () => {
  test('refuses every node-only key in its file at once, each at file:line, naming run', () => {
    const t = text('datapath: none\ncache_size: 0\ncontrol: /tmp/ps.sock\ntls_relay: 127.0.0.1:9\nmode: gateway\n');
    let message = '';
    try {
      load(t);
    } catch (err) {
      message = (err as Error).message;
    }
    const because = (key: string, line: number) => `${FILE}:${line}: the policy server does not use ${key}; it is a setting of \`dnsseal run\``;
    for (const [key, line] of [['datapath', 14], ['cache_size', 15], ['control', 16], ['tls_relay', 17], ['mode', 18]] as const) expect(message).toContain(because(key, line));
  });

  test('refuses a node-only flag that reaches the loader by name', () => {
    expect(() => load(text(''), new Map([['cache-size', ['0']]]))).toThrow('--cache-size: the policy server does not use cache_size; it is a setting of `dnsseal run`');
  });

  test('keeps taking the settings it uses when they are in its file', () => {
    const cfg = load(text('allow_clients: [10.0.0.0/8]\nupstream_source: 127.0.0.9\nlan: [lan0]\nupstream_timeout: 500\nlog_level: warn\n'));
    expect([cfg.base.allowClients, cfg.base.upstreamSource, cfg.base.lan, cfg.base.upstreamTimeoutMs, cfg.base.logLevel]).toEqual([['10.0.0.0/8'], '127.0.0.9', ['lan0'], 500, 'warn']);
  });
});
