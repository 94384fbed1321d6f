/**
 * The daemon's TLS step end to end on loopback: an accepting node (`tls_accept:`, datapath
 * none, an HTTP server behind it) and a relaying node (a `protocol: tls` peer channel, the
 * fake data path). A name resolved through the relaying node is registered under the tls
 * channel; a connection handed to its relay directly (the kernel interception does not exist
 * yet: the test records the original destination, as the interception will) is carried
 * through the acceptor to the HTTP server, byte for byte. Connections with no recorded
 * destination, or to an address no tls channel holds, are reset; `status` and the metrics show
 * both sides; stopping the relaying node resets a transfer in progress.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { loadConfigText } from '../../src/config/load.ts';
import { controlRequest } from '../../src/control/client.ts';
import { configWith } from '../../src/config/defaults.ts';
import { TlsRuntime, ipsecHooks, ipsecOnly } from '../../src/daemon/tls-step.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { UndoStack } from '../../src/util/undo-stack.ts';
import { silentLogger } from '../../src/util/log.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { RecordedDestinations } from '../../src/tls/recorded-destinations.ts';
import type { InterceptedConn, OriginalDestination } from '../../src/tls/relay-listener.ts';
import type { Destination } from '../../src/tls/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { ask, makeQuery } from '../policy-server/helpers.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { waitFor, writeAll } from '../tls/endpoint-pairs.ts';
import { TestPki } from '../tls/pki.ts';
import { BIG, BIG_SHA, httpServer, rawClient } from '../tls/rig.ts';
import { startDaemon, type StartedDaemon } from './start.ts';

const deps = { readFile: (p: string) => readFileSync(p, 'utf8'), resolvTexts: () => [] as string[] };

/**
 * What the kernel interception will do, done by the test: the original destination of a
 * connection, recorded by its source address and port. The relay's lookup waits (briefly)
 * for the record, since the test learns its source port only once connected.
 */
class TestInterception implements OriginalDestination {
  readonly table = new RecordedDestinations();
  private readonly known = new Set<string>();
  record(peer: Destination, dst: Destination): void {
    this.table.record(peer, dst);
    this.known.add(`${peer.port}`);
  }
  /** The connection from this source port was not intercepted: no record will come. */
  none(port: number): void {
    this.known.add(`${port}`);
  }
  async lookup(conn: InterceptedConn): Promise<Destination | null> {
    const until = performance.now() + 2000;
    while (!this.known.has(`${conn.peer.port}`) && performance.now() < until) await Bun.sleep(2);
    return this.table.lookup(conn);
  }
}

/** One HTTP/1.1 exchange over a raw connection to the relay; the response split into head and body. */
async function exchange(relayPort: number, icpt: TestInterception, dst: Destination | null, request: Uint8Array) {
  const { ep, col } = await rawClient(relayPort);
  if (dst) icpt.record({ addr: '127.0.0.1', port: ep.sock!.localPort }, dst);
  else icpt.none(ep.sock!.localPort);
  await writeAll(ep, col, request);
  // The server answers and closes (Connection: close): its FIN reaches us; then we close too.
  await waitFor(() => col.ended || col.closed, 'the relayed response to end', 20_000);
  ep.end();
  await waitFor(() => col.closed, 'the relayed connection to close');
  const all = Buffer.from(col.all());
  const split = all.indexOf('\r\n\r\n');
  return { col, head: split < 0 ? '' : all.subarray(0, split).toString(), body: split < 0 ? all : all.subarray(split + 4) };
}

const get = (path: string) => new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: peer.partner.test\r\nConnection: close\r\n\r\n`);

describe('daemon tls', () => {
  let dir: string;
  let pki: TestPki;
  let http: ReturnType<typeof httpServer>;
  let upstream: FakeUpstream;
  let acceptNode: StartedDaemon;
  let relayNode: StartedDaemon | undefined;
  let dnsPort: number;
  let relayPort: number;
  const icpt = new TestInterception();
  const relayMetrics = new Metrics();
  const acceptMetrics = new Metrics();
  const peerAdded: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-tls-daemon-'));
    pki = new TestPki();
    pki.leaf('peer', ['DNS:peer.partner.test']);
    pki.leaf('router', ['DNS:router.corp.test']);
    http = httpServer();
    upstream = await FakeUpstream.start((q, t) => t.answerFor(q, { answers: [{ name: q.name, type: 'A', ttl: 60, class: 'IN', data: '127.0.0.1' }] }));

    // The accepting node: only tls_accept (no rules, datapath none).
    const acceptText = [
      'datapath: none',
      'listen: [127.0.0.1:5399]',
      `upstreams: { default: 127.0.0.1:${upstream.port} }`,
      `control: ${join(dir, 'accept.sock')}`,
      `tls_cert: ${pki.path('peer.crt')}`,
      `tls_key: ${pki.path('peer.key')}`,
      `tls_ca: ${pki.path('ca.crt')}`,
      'tls_accept:',
      '  listen: ["127.0.0.1:9853"]',
      '  clients:',
      '    - identity: router.corp.test',
      '      allow:',
      `        - {cidrs: [127.0.0.1/32], ports: [${http.port}]}`,
      '',
    ].join('\n');
    const acceptCfg = { ...loadConfigText(acceptText, join(dir, 'accept.yaml'), new Map(), deps), listen: ['127.0.0.1:0'] };
    acceptCfg.tlsAccept = { ...acceptCfg.tlsAccept!, listen: ['127.0.0.1:0'] };
    acceptNode = await startDaemon(acceptCfg, { metrics: acceptMetrics }, 'accepting node');
    const acceptPort = Number(acceptNode.info.tls.accept[0]!.split(':').at(-1));

    // The relaying node: a tls peer channel for *.partner.test, to the acceptor's port.
    const relayText = [
      'mode: host',
      'datapath: fake',
      'listen: [127.0.0.1:5399]',
      `upstreams: { default: 127.0.0.1:${upstream.port} }`,
      `control: ${join(dir, 'relay.sock')}`,
      `tls_cert: ${pki.path('router.crt')}`,
      `tls_key: ${pki.path('router.key')}`,
      `tls_ca: ${pki.path('ca.crt')}`,
      'channels:',
      `  partner: { protocol: tls, kind: peer, tls_port: ${acceptPort} }`,
      'tables:',
      '  default:',
      '    - { match: "*.partner.test", channel: partner }',
      '',
    ].join('\n');
    const relayCfg = { ...loadConfigText(relayText, join(dir, 'relay.yaml'), new Map(), deps), listen: ['127.0.0.1:0'], tlsRelay: '127.0.0.1:0' };
    const spy = Object.assign(new NoIpsec([]), {
      async peerAdded(ch: ChannelSpec, addr: string) {
        peerAdded.push(`${ch.name}/${addr}`);
      },
    });
    relayNode = await startDaemon(relayCfg, { metrics: relayMetrics, ebpf: () => new FakeDatapath({ clock: realClock }), ipsec: spy, tlsOriginalDst: icpt }, 'relaying node');
    dnsPort = relayNode.info.listeners.find((l) => l.transport === 'udp')!.port;
    relayPort = Number(relayNode.info.tls.relay!.split(':').at(-1));
  });

  afterAll(async () => {
    relayNode?.signals.emit('SIGTERM');
    acceptNode?.signals.emit('SIGTERM');
    await Promise.all([relayNode?.exit, acceptNode?.exit]);
    http?.server.stop(true);
    upstream?.stop();
    pki?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('registers a name under the tls channel without asking IPsec when it is resolved through the relaying node', async () => {
    const a = dnsPacket.decode(Buffer.from(await ask('udp', dnsPort, makeQuery('peer.partner.test'), '127.0.0.1', 5000))) as dnsPacket.DecodedPacket & { rcode: string };
    expect(a.rcode).toBe('NOERROR');
    const e = relayNode!.info.registry.list().find((x) => x.addr === '127.0.0.1');
    expect(e).toMatchObject({ channel: 'partner', names: ['peer.partner.test'] });
    expect(peerAdded).toEqual([]);
  });

  test('relays a connection to the registered address through the acceptor to the HTTP server byte for byte', async () => {
    const r = await exchange(relayPort, icpt, { addr: '127.0.0.1', port: http.port }, get('/big'));
    expect(r.col.error).toBeUndefined();
    expect(r.head).toStartWith('HTTP/1.1 200');
    expect(createHash('sha256').update(r.body).digest('hex')).toBe(BIG_SHA);
    const body = BIG.subarray(0, 3 << 20);
    const post = Buffer.concat([Buffer.from(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]);
    const e = await exchange(relayPort, icpt, { addr: '127.0.0.1', port: http.port }, post);
    expect(e.body.toString()).toBe(`${body.length} ${createHash('sha256').update(body).digest('hex')}`);
  });

  test('resets a connection whose original destination nobody recorded', async () => {
    const before = http.seen.requests;
    const r = await exchange(relayPort, icpt, null, get('/'));
    expect(r.col.error?.message).toMatch(/ECONNRESET|reset/);
    expect(r.col.bytes).toBe(0);
    expect(http.seen.requests).toBe(before);
    expect(relayMetrics.expose()).toContain('dnsseal_tls_relay_connections_total{channel="none",outcome="no_route"} 1');
  });

  test('resets a connection to an address no tls channel holds', async () => {
    const before = http.seen.requests;
    const r = await exchange(relayPort, icpt, { addr: '127.0.0.2', port: http.port }, get('/'));
    expect(r.col.error?.message).toMatch(/ECONNRESET|reset/);
    expect(r.col.bytes).toBe(0);
    expect(http.seen.requests).toBe(before);
  });

  test('reports both sides in status and metrics when flows went through', async () => {
    const rs = (await controlRequest(join(dir, 'relay.sock'), { cmd: 'status' })) as { tls: Record<string, any> };
    expect(rs.tls.intercepting).toBe(false);
    expect(rs.tls.relay.listen).toBe(`127.0.0.1:${relayPort}`);
    expect(rs.tls.relay.channels).toEqual([{ name: 'partner', kind: 'peer', port: Number(acceptNode.info.tls.accept[0]!.split(':').at(-1)), identity: '%name', local_identity: ['router.corp.test'] }]);
    expect(rs.tls.accept).toBeNull();
    expect(rs.tls.open).toEqual({ relay: 0, accept: 0, pending: 0 });
    expect(rs.tls.bytes.relay.downstream).toBeGreaterThan(BIG.length);
    const as = (await controlRequest(join(dir, 'accept.sock'), { cmd: 'status' })) as { tls: Record<string, any> };
    expect(as.tls.relay).toBeNull();
    expect(as.tls.accept).toEqual({ listen: acceptNode.info.tls.accept, identity: ['peer.partner.test'], clients: 1 });
    expect(as.tls.bytes.accept.upstream).toBe(rs.tls.bytes.relay.upstream);
    expect(relayMetrics.expose()).toContain('dnsseal_tls_relay_connections_total{channel="partner",outcome="ok"} 2');
    expect(acceptMetrics.expose()).toContain('dnsseal_tls_accept_connections_total{outcome="ok"} 2');
    expect(relayMetrics.expose()).toMatch(/dnsseal_tls_handshake_seconds_count\{side="relay"\} 2/);
  });

  test('resets a transfer in progress when the relaying node stops', async () => {
    const { ep, col } = await rawClient(relayPort);
    icpt.record({ addr: '127.0.0.1', port: ep.sock!.localPort }, { addr: '127.0.0.1', port: http.port });
    ep.pause(); // the download stalls in the socket buffers: the flow stays in progress
    await writeAll(ep, col, get('/big'));
    await waitFor(() => relayMetrics.expose().includes('dnsseal_tls_connections{state="relay"} 1') && acceptMetrics.expose().includes('dnsseal_tls_connections{state="accept"} 1'), 'the flow to be relayed');
    relayNode!.signals.emit('SIGTERM');
    expect(await relayNode!.exit).toBe(0);
    relayNode = undefined;
    ep.resume();
    await waitFor(() => col.closed, 'the local connection to end');
    expect(col.error?.message).toMatch(/ECONNRESET|reset/);
    expect(col.bytes).toBeLessThan(BIG.length);
    // the other half of the flow, the TLS connection, was reset too: the acceptor let it go
    await waitFor(() => acceptMetrics.expose().includes('dnsseal_tls_accept_connections_total{outcome="reset"} 1'), 'the accepting side to see the reset');
    expect(acceptMetrics.expose()).toContain('dnsseal_tls_connections{state="accept"} 0');
  });
});

describe('daemon tls-step', () => {
  const tls: ChannelSpec = { name: 't', id: 1, mark: 1, protocol: 'tls', kind: 'peer', identity: '%name', esp: '', tlsPort: 9853 };
  const ipsec: ChannelSpec = { name: 'i', id: 2, mark: 2, protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'aes256gcm16' };

  test('gives strongSwan the IPsec channels only when tls channels are configured', () => {
    const cfg = { channels: [tls, ipsec] } as never;
    expect((ipsecOnly(cfg) as { channels: ChannelSpec[] }).channels).toEqual([ipsec]);
  });

  test('starts the relay when a reload adds the first tls channel, and puts everything back on rollback', async () => {
    const creds = { certPem: 'C', keyPem: 'K', caPem: 'A', names: ['router.corp.test'] };
    const running = configWith({ source: 'a', tlsRelay: '127.0.0.1:0', channels: [ipsec] });
    const next = { ...running, channels: [ipsec, tls], tlsCredentials: { t: creds } };
    const stack = new UndoStack(silentLogger, 'test');
    const rt = TlsRuntime.start(running, { log: silentLogger, metrics: new Metrics(), registry: { get: () => undefined }, groupOf: () => 0 }, stack);
    expect(rt.status()).toBeNull();
    const part = rt.part();
    const p = await part.prepare(running, next);
    part.apply(p);
    expect(rt.status()!.relay!.channels.map((c) => [c.name, c.port, c.local_identity])).toEqual([['t', 9853, ['router.corp.test']]]);
    expect(rt.info().relay).toMatch(/^127\.0\.0\.1:\d+$/);
    part.rollback(p);
    expect(rt.status()).toBeNull();
    await stack.unwind();
  });

  test('passes per-peer hooks on for IPsec channels only', async () => {
    const seen: string[] = [];
    const h = ipsecHooks({ peerAdded: async (c) => void seen.push(`add ${c.name}`), peerRemoved: (c) => void seen.push(`remove ${c.name}`) });
    await h.peerAdded(tls, '192.0.2.1', 'x.test');
    await h.peerAdded(ipsec, '192.0.2.2', 'y.test');
    h.peerRemoved(tls, '192.0.2.1');
    h.peerRemoved(ipsec, '192.0.2.2');
    expect(seen).toEqual(['add i', 'remove i']);
  });
});
