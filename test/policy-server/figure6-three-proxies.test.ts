/**
 * Figure 6 end to end with three separate proxies (issue #5): one policy server holding the
 * figure's tables (501: 127.0.0.2 → 502, 127.0.0.3 → 503, 127.0.0.4 → 504; modern ciphers) and
 * three in-process daemons on this machine, each loaded from YAML with its own
 * `upstream_source`, so the server tells them apart by the source address of their queries,
 * exactly as it would three hosts. Each asks for kojima.jinji.nec.com; the first registers it
 * under table 502's channel (hub-a, tunnel), the second under table 503's (peer-b), the third
 * registers nothing. A queries stay on UDP upstream; the AAAA answer is too large for UDP, so
 * the proxies retry over TCP and the server classifies the TCP connection's source.
 * Fake data path, no IPsec, loopback only; no root.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfigText } from '../../src/config/load.ts';
import type { DaemonInfo } from '../../src/daemon/index.ts';
import { Zone } from '../../src/policy-server/zone.ts';
import type { Listener, QueryHandler } from '../../src/proxy/handler.ts';
import { startTcpListener } from '../../src/proxy/listener-tcp.ts';
import { startUdpListener } from '../../src/proxy/listener-udp.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { CLIENT_502, CLIENT_503, CLIENT_504, KEY, KOJIMA, KOJIMA_ADDR, SECRET, ZONE_TEXT, ask, figure6State, makeQuery, startServer, type Transport } from './helpers.ts';
import { startDaemon } from '../daemon/start.ts';
import { listenPair } from '../proxy/listen-pair.ts';

/** kojima.jinji.nec.com's AAAA set: 48 × 28 octets, more than fits the proxy's 1232-octet UDP. */
const KOJIMA_V6 = Array.from({ length: 48 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
const ZONE = ZONE_TEXT + KOJIMA_V6.map((a) => `kojima.jinji AAAA  ${a}\n`).join('');

interface Node {
  source: string;
  info: DaemonInfo;
  port: number;
  exit: Promise<number>;
  signals: EventEmitter;
}

/** What the policy server saw: one row per query, `TYPE transport source`. */
const seen: string[] = [];
let closeServer: () => Promise<void>;
let dir: string;
const nodes: Node[] = [];

function nodeYaml(serverPort: number, source: string, control: string): string {
  return [
    'mode: host',
    'listen: [127.0.0.1:53]', // replaced by port 0 below: the loader refuses 0, the daemon takes it
    'upstreams:',
    `  default: { address: "127.0.0.1:${serverPort}", tsig_key: ${KEY.name} }`,
    'policy_server: default',
    `upstream_source: ${source}`,
    'tsig_keys:',
    `  ${KEY.name}: { secret: "${SECRET}" }`,
    'datapath: fake',
    `control: ${control}`,
    'upstream_timeout: 1500',
    'log_level: error',
    '',
  ].join('\n');
}

/**
 * A listen port 0 gets a free UDP port and then takes the same number for TCP, which an
 * outgoing connection of another test may hold (EADDRINUSE): starting is retried a few times.
 */
const ATTEMPTS = 5;

async function startNode(serverPort: number, source: string, i: number): Promise<Node> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodeOnce(serverPort, source, `${i}-${attempt}`);
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
    }
  }
}

async function startNodeOnce(serverPort: number, source: string, i: string): Promise<Node> {
  const loaded = loadConfigText(nodeYaml(serverPort, source, join(dir, `control-${i}.sock`)), `node-${i}.yaml`, new Map(), fileDeps);
  expect(loaded.upstreamSource).toBe(source);
  const cfg = { ...loaded, listen: ['127.0.0.1:0'] };
  const signals = new EventEmitter();
  const { info, exit } = await startDaemon(cfg, { signals }, `daemon ${source}`);
  return { source, info, port: info.listeners.find((l) => l.transport === 'udp')!.port, exit, signals };
}

beforeAll(async () => {
  // The server: figure 6 (helpers.ts), with AAAA records large enough to force TCP.
  const ps = startServer(figure6State({ zone: Zone.parse(ZONE, 'figure6-three.zone') }), realClock);
  const handle: QueryHandler = (q, c) => {
    const d = dnsPacket.decode(Buffer.from(q));
    seen.push(`${d.questions?.[0]?.type} ${c.transport} ${c.address}`);
    return ps.handle(q, c);
  };
  const counters = newProxyCounters();
  // One port for both transports: the proxy's TCP retry goes to the UDP upstream's port.
  const pair = await listenPair(handle, counters);
  closeServer = () => pair.close();
  dir = mkdtempSync(join(tmpdir(), 'dnsseal-fig6-three-'));
  for (const [i, source] of [CLIENT_502, CLIENT_503, CLIENT_504].entries()) nodes.push(await startNode(pair.port, source, i));
});

afterAll(async () => {
  for (const n of nodes) n.signals.emit('SIGTERM');
  await Promise.all(nodes.map((n) => n.exit));
  await closeServer?.();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen.length = 0;
  for (const n of nodes) n.info.registry.withdraw(() => true);
});

// Withdrawn entries are retired, not removed (issue #11): the rows are the live ones.
const rows = (n: Node) =>
  n.info.registry
    .list()
    .filter((e) => !e.retired)
    .map((e): [number, string, string] => [e.group, e.addr, e.channel])
    .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)); // code-unit order, as Array.sort

function addresses(answer: Uint8Array): string[] {
  const d = dnsPacket.decode(Buffer.from(answer));
  return (d.answers ?? []).filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => String((a as { data: string }).data));
}

describe('policy-server figure 6 with three proxies', () => {
  test.each<Transport>(['udp', 'tcp'])(
    'registers kojima.jinji.nec.com under table 502’s channel, table 503’s, and not at all when three proxies ask (client over %s)',
    async (t) => {
      const [p502, p503, p504] = nodes as [Node, Node, Node];
      for (const n of nodes) {
        const a = await ask(t, n.port, makeQuery(KOJIMA), '127.0.0.1', 3000);
        expect(a[3]! & 0x0f).toBe(0); // NOERROR for every proxy, protected or not
        expect(addresses(a)).toEqual([KOJIMA_ADDR]);
      }
      // The server told them apart by the source address of their (UDP) upstream queries.
      expect(seen.sort()).toEqual([`A udp ${CLIENT_502}`, `A udp ${CLIENT_503}`, `A udp ${CLIENT_504}`]);
      expect(rows(p502)).toEqual([[0, KOJIMA_ADDR, 'server:hub-a']]);
      expect(rows(p503)).toEqual([[0, KOJIMA_ADDR, 'server:peer-b']]);
      expect(rows(p504)).toEqual([]);
    },
  );

  test('registers the same way when the answer is truncated and the proxies retry upstream over TCP', async () => {
    const [p502, p503, p504] = nodes as [Node, Node, Node];
    const retries = nodes.map((n) => n.info.counters.upstreamTcpRetries);
    for (const n of nodes) {
      const a = await ask('tcp', n.port, makeQuery(KOJIMA, { type: 'AAAA' }), '127.0.0.1', 3000);
      expect(a[3]! & 0x0f).toBe(0);
      expect(addresses(a).sort()).toEqual([...KOJIMA_V6].sort());
    }
    expect(nodes.map((n, i) => n.info.counters.upstreamTcpRetries - retries[i]!)).toEqual([1, 1, 1]);
    // Each proxy: a UDP query (answered truncated), then a TCP one — both from its own address.
    expect(seen.sort()).toEqual([
      `AAAA tcp ${CLIENT_502}`,
      `AAAA tcp ${CLIENT_503}`,
      `AAAA tcp ${CLIENT_504}`,
      `AAAA udp ${CLIENT_502}`,
      `AAAA udp ${CLIENT_503}`,
      `AAAA udp ${CLIENT_504}`,
    ]);
    const expected = (channel: string) => [...KOJIMA_V6].sort().map((a): [number, string, string] => [0, a, channel]);
    expect(rows(p502)).toEqual(expected('server:hub-a'));
    expect(rows(p503)).toEqual(expected('server:peer-b'));
    expect(rows(p504)).toEqual([]);
  });
});
