/**
 * The relay pair across two network namespaces with a capture on the wire between them:
 * the HTTP payload never appears in clear, only TLS to the TLS port; a peer with another
 * name's certificate gets nothing, and the server sees nothing. Needs root (CI runs as root).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { delNs, inNs, script, sh } from '../netns/netns.ts';
import { NodeProc } from './node-proc.ts';
import { standardPki } from './pki.ts';

const root = process.getuid?.() === 0;
if (!root) console.log('tls/relay-netns: skipped, needs root for network namespaces');
const R = `tlsr${process.pid}`;
const P = `tlsp${process.pid}`;
const MARK_REQ = `req-${crypto.randomUUID()}`;
const MARK_RES = `res-${crypto.randomUUID()}`;

describe.skipIf(!root)('tls relay between network namespaces', () => {
  const pki = standardPki();
  const procs: NodeProc[] = [];
  const nsR = ['ip', 'netns', 'exec', R];
  const nsP = ['ip', 'netns', 'exec', P];
  let http: NodeProc;

  beforeAll(async () => {
    delNs(R, P);
    sh(['ip', 'netns', 'add', R], { ok: true });
    sh(['ip', 'netns', 'add', P], { ok: true });
    sh(['ip', 'link', 'add', 'tr0', 'netns', R, 'type', 'veth', 'peer', 'name', 'tp0', 'netns', P], { ok: true });
    script(R, ['ip link set lo up', 'ip addr add 192.0.2.1/24 dev tr0', 'ip link set tr0 up']);
    script(P, ['ip link set lo up', 'ip addr add 192.0.2.2/24 dev tp0', 'ip link set tp0 up']);
    http = await NodeProc.start({ role: 'http', listen: { host: '192.0.2.2', port: 8080 }, body: `${MARK_RES} from the peer\n` }, nsP);
    procs.push(http);
    const clients = [{ identity: 'router.corp.test', allow: [{ cidrs: ['192.0.2.2/32'], ports: [8080] }] }];
    for (const [cert, port] of [['peer', 9853], ['impostor', 9854]] as const) {
      procs.push(await NodeProc.start({ role: 'acceptor', listen: { host: '192.0.2.2', port }, creds: { cert: pki.path(`${cert}.crt`), key: pki.path(`${cert}.key`), ca: pki.path('ca.crt') }, clients }, nsP));
    }
  });

  afterAll(() => {
    for (const p of procs) p.stop();
    delNs(R, P);
    pki.cleanup();
  });

  async function relay(tlsPort: number): Promise<NodeProc> {
    const p = await NodeProc.start({
      role: 'relay',
      listen: { host: '127.0.0.1', port: 0 },
      creds: { cert: pki.path('router.crt'), key: pki.path('router.key'), ca: pki.path('ca.crt') },
      channel: { name: 'partner', kind: 'peer', port: tlsPort, identity: '%name' },
      dst: { addr: '192.0.2.2', port: 8080 },
      name: 'peer.partner.test',
    }, nsR);
    procs.push(p);
    return p;
  }

  /** Runs `fn` while tcpdump captures on R's wire; returns the capture file's bytes and summary. */
  async function captured(fn: () => Promise<void>): Promise<{ raw: string; tlsPackets: number; clearHttp: number }> {
    const file = pki.path(`cap-${Math.random().toString(36).slice(2)}.pcap`);
    const dump = Bun.spawn([...nsR, 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', 'tr0', '-U', '-s', '0', '-w', file], { stdout: 'ignore', stderr: 'pipe' });
    const errReader = dump.stderr.getReader();
    let err = '';
    while (!err.includes('listening on')) {
      const { value, done } = await errReader.read();
      if (done) throw new Error(`tcpdump did not start: ${err}`);
      err += new TextDecoder().decode(value);
    }
    await fn();
    // --immediate-mode -U: each packet is written as it comes, in order. A datagram sent after fn
    // is in the file only once everything before it is; a stop before that would lose the tail.
    const sentinel = `end-${crypto.randomUUID()}`;
    inNs(P, ['bash', '-c', `echo ${sentinel} > /dev/udp/192.0.2.1/9`]);
    const end = Date.now() + 10_000;
    while (!(existsSync(file) && readFileSync(file).toString('latin1').includes(sentinel))) {
      if (Date.now() > end) throw new Error('tcpdump did not write the end-of-capture datagram within 10 s');
      await Bun.sleep(20);
    }
    dump.kill('SIGINT');
    await dump.exited;

    const raw = readFileSync(file).toString('latin1');
    const count = (filter: string) => inNs(R, ['tcpdump', '-nn', '-r', file, filter]).out.split('\n').filter(Boolean).length;
    return { raw, tlsPackets: count('tcp port 9853 or tcp port 9854'), clearHttp: count('tcp port 8080') };
  }

  async function requests(): Promise<number> {
    return Number(/http_requests (\d+)/.exec(await http.metrics())![1]);
  }

  test('the capture holds the payload in clear when curl goes straight to the server (control)', async () => {
    const cap = await captured(async () => {
      const r = inNs(R, ['curl', '-sS', '--max-time', '10', '-H', `X-Mark: ${MARK_REQ}`, 'http://192.0.2.2:8080/']);
      expect(r.out).toContain(MARK_RES);
    });
    expect(cap.raw).toContain(MARK_REQ);
    expect(cap.raw).toContain(MARK_RES);
  });

  test('a request through the relay comes back and its payload never crosses the wire in clear', async () => {
    const rel = await relay(9853);
    const before = await requests();
    const cap = await captured(async () => {
      const r = inNs(R, ['curl', '-sS', '--max-time', '10', '-H', `X-Mark: ${MARK_REQ}`, `http://127.0.0.1:${rel.port}/${MARK_REQ}`]);
      expect(r.out).toBe(`${MARK_RES} from the peer\n`);
    });
    expect(await requests()).toBe(before + 1);
    expect(cap.tlsPackets).toBeGreaterThan(5);
    expect(cap.clearHttp).toBe(0);
    expect(cap.raw).not.toContain(MARK_REQ);
    expect(cap.raw).not.toContain(MARK_RES);
  });

  test('a peer with another name gets a reset client, the server nothing, the wire no clear byte', async () => {
    const rel = await relay(9854);
    const before = await requests();
    const cap = await captured(async () => {
      const r = inNs(R, ['curl', '-sS', '--max-time', '10', '-H', `X-Mark: ${MARK_REQ}`, `http://127.0.0.1:${rel.port}/${MARK_REQ}`]);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/reset|Recv failure/i);
    });
    expect(await requests()).toBe(before);
    expect(cap.tlsPackets).toBeGreaterThan(0);
    expect(cap.clearHttp).toBe(0);
    expect(cap.raw).not.toContain(MARK_REQ);
    const m = await rel.metrics();
    expect(m).toContain('dnsseal_tls_handshake_failures_total{reason="identity",side="relay"} 1');
  });
});
