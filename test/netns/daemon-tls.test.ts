/**
 * The TLS channel end to end with the real dist/dnsseal (issue 13, root), in the daemon lab:
 *
 *   client ── lan0 router (dnsseal: tls channels, relay) wan0 ── internet
 *                                                                 ├ 203.0.113.10 prot.seal.test: HTTP :8080 behind
 *                                                                 │   an accepting dnsseal on :9853 (`tls_accept`)
 *                                                                 ├ 198.51.100.2 the hub (same accepting dnsseal)
 *                                                                 └ 203.0.113.40 live.seal.test: an accepting dnsseal
 *                                                                     whose certificate names another host
 *
 * Channels: `partner` (tls peer, identity %name) protects prot/live.seal.test, `hub` (tls
 * tunnel via 198.51.100.2, identity hub.seal.test) protects hostp.seal.test. Gateway mode: the
 * client resolves through the router and curls; host mode: a process on the router does. Each
 * time a capture on wan0 must hold TLS to port 9853 only: no packet to port 8080, no byte of
 * the request or response marker. A peer whose certificate is for another name: the connection
 * fails, the server sees nothing. The router's dnsseal killed during a transfer: the transfer
 * fails, nothing in clear; restarted, it works again.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../tls/pki.ts';
import { CLIENT4, DaemonLab, DIST, HOST4, labSkipReason, LAN4, LIVE4, NET4, PROT4, readPcap, requireDist, type Dnsseal } from './fixtures/daemon-lab.ts';
import { bunBin, inNs, nsenter, sh } from './netns.ts';

const skip = labSkipReason() ?? (Bun.which('curl') ? undefined : 'curl missing');
if (skip) console.log(`netns daemon tls: skipping: ${skip}`);

const MARK_REQ = `req-${crypto.randomUUID()}`;
const MARK_RES = `res-${crypto.randomUUID()}`;
const BIG_MB = 64;
const HTTP = `
let n = 0;
const big = new Uint8Array(${BIG_MB} << 20).fill(0x61);
Bun.serve({ hostname: '0.0.0.0', port: 8080, fetch(req) {
  const p = new URL(req.url).pathname;
  if (p === '/count') return new Response(String(n));
  n++;
  if (p === '/big') return new Response(big);
  return new Response('${MARK_RES} ' + p + '\\n');
} });
setInterval(() => {}, 1e6);`;

function routerConfig(lab: DaemonLab, pki: TestPki, mode: 'gateway' | 'host'): string {
  const f = join(lab.dir, `router-${mode}.yaml`);
  writeFileSync(
    f,
    [
      `mode: ${mode}`,
      'datapath: ebpf',
      ...(mode === 'gateway' ? ['lan: [lan0]'] : []),
      'wan: [wan0]',
      `listen: [${mode === 'gateway' ? LAN4 : '127.0.0.1'}:53]`,
      `upstreams: { default: ${NET4}:53 }`,
      'min_hold: 60',
      'log_level: debug',
      `tls_cert: ${pki.path('router.crt')}`,
      `tls_key: ${pki.path('router.key')}`,
      `tls_ca: ${pki.path('ca.crt')}`,
      'channels:',
      '  partner: { protocol: tls, kind: peer }',
      `  hub: { protocol: tls, kind: tunnel, gateway: ${NET4}, identity: hub.seal.test }`,
      'tables:',
      '  default:',
      '    - { match: prot.seal.test, channel: partner }',
      '    - { match: live.seal.test, channel: partner }',
      '    - { match: hostp.seal.test, channel: hub }',
      '',
    ].join('\n'),
  );
  return f;
}

function acceptConfig(lab: DaemonLab, pki: TestPki, name: string, cert: string, listen: string[]): string {
  const f = join(lab.dir, `${name}.yaml`);
  writeFileSync(
    f,
    [
      'datapath: none',
      `listen: [127.0.0.1:${name === 'accept' ? 5301 : 5302}]`,
      `upstreams: { default: ${NET4}:53 }`,
      `control: ${join(lab.dir, `${name}.sock`)}`,
      `tls_cert: ${pki.path(`${cert}.crt`)}`,
      `tls_key: ${pki.path(`${cert}.key`)}`,
      `tls_ca: ${pki.path('ca.crt')}`,
      'tls_accept:',
      `  listen: [${listen.map((l) => `"${l}"`).join(', ')}]`,
      '  clients:',
      '    - identity: router.seal.test',
      '      allow: [{ cidrs: [203.0.113.0/24], ports: [8080] }]',
      '',
    ].join('\n'),
  );
  return f;
}

describe.skipIf(skip !== undefined)('netns daemon tls channel (dist/dnsseal)', () => {
  const lab = new DaemonLab('t');
  const pki = new TestPki();
  let daemon: Dnsseal;

  const fromClient = (argv: string[], timeoutMs = 20_000) => inNs(lab.c, argv, { timeoutMs });
  const fromRouter = (argv: string[], timeoutMs = 20_000) => nsenter(lab.r, argv, { timeoutMs });
  const served = () => Number(inNs(lab.i, ['curl', '-s', 'http://127.0.0.1:8080/count']).out);

  /** Runs `fn` with a capture on wan0; returns the capture's raw bytes and what it held. */
  async function onWan(fn: () => Promise<void> | void): Promise<{ raw: string; tls: number; clear: number; other: number }> {
    const file = join(lab.dir, `wan-${crypto.randomUUID()}.pcap`);
    const cap = await lab.capture(lab.r, 'wan0', file);
    await fn();
    const tls = await lab.readCapture(cap, file, 'tcp port 9853');
    return {
      raw: readFileSync(file).toString('latin1'),
      tls: tls.length,
      clear: readPcap(file, 'tcp port 8080').length,
      other: readPcap(file, `(host ${PROT4} or host ${LIVE4} or host ${HOST4}) and not tcp port 9853`).length,
    };
  }

  /** One request that must come back, reach the server once, and cross the WAN as TLS to 9853 only. */
  async function sealedExchange(request: () => { out: string; err: string }): Promise<void> {
    const before = served();
    const cap = await onWan(() => {
      const r = request();
      expect(r.err).toBe('');
      expect(r.out).toBe(`${MARK_RES} /${MARK_REQ}\n`);
    });
    expect(served()).toBe(before + 1);
    expect(cap.tls).toBeGreaterThan(5);
    expect(cap.clear).toBe(0);
    expect(cap.other).toBe(0);
    expect(cap.raw).not.toContain(MARK_REQ);
    expect(cap.raw).not.toContain(MARK_RES);
  }

  async function startRouter(mode: 'gateway' | 'host'): Promise<void> {
    daemon = await lab.startDnssealClaimed(['--config', routerConfig(lab, pki, mode)]);
  }

  async function stopRouter(): Promise<void> {
    daemon.proc.kill('SIGTERM');
    await daemon.proc.exited;
  }

  beforeAll(async () => {
    requireDist();
    pki.leaf('router', ['DNS:router.seal.test']);
    pki.leaf('accept', ['DNS:prot.seal.test', 'DNS:hub.seal.test']);
    pki.leaf('impostor', ['DNS:other.seal.test']);
    lab.topology();
    await lab.startKnot();
    lab.spawnIn(lab.i, [bunBin(), '-e', HTTP]);
    lab.spawnIn(lab.i, [DIST, 'run', '--config', acceptConfig(lab, pki, 'accept', 'accept', [`${PROT4}:9853`, `${HOST4}:9853`, `${NET4}:9853`])]);
    lab.spawnIn(lab.i, [DIST, 'run', '--config', acceptConfig(lab, pki, 'impostor', 'impostor', [`${LIVE4}:9853`])]);
    const end = Date.now() + 30_000;
    for (;;) {
      const listening = inNs(lab.i, ['ss', '-Hltn', 'sport = :9853']).out.trim().split('\n').filter(Boolean).length;
      if (listening === 4 && inNs(lab.i, ['curl', '-s', 'http://127.0.0.1:8080/count']).code === 0) break;
      if (Date.now() > end) throw new Error(`the accepting side did not come up (${listening} of 4 TLS listeners)`);
      await Bun.sleep(200);
    }
  }, 120_000);

  afterAll(async () => {
    await lab.destroy();
    pki.cleanup();
  });

  describe('gateway mode', () => {
    beforeAll(async () => {
      await startRouter('gateway');
    }, 300_000);
    afterAll(async () => {
      await stopRouter();
    });

    const curl = (addr: string, path: string, max = 10) => fromClient(['curl', '-sS', '--max-time', String(max), '-H', `X-Mark: ${MARK_REQ}`, `http://${addr}:8080${path}`]);
    const resolve = (name: string) => fromClient(['dig', `@${LAN4}`, '+short', '+tries=1', '+timeout=5', name, 'A']).out.trim();

    test.each([
      ['peer', 'prot.seal.test', PROT4],
      ['tunnel', 'hostp.seal.test', HOST4],
    ])('curl from the client through a %s channel works, and the WAN holds TLS to 9853 only', async (_kind, name, addr) => {
      expect(resolve(name)).toBe(addr);
      await sealedExchange(() => curl(addr, `/${MARK_REQ}`));
    });

    test('a peer whose certificate names another host: the connection fails, nothing reaches the server, nothing in clear', async () => {
      expect(resolve('live.seal.test')).toBe(LIVE4);
      const before = served();
      const cap = await onWan(() => {
        const r = curl(LIVE4, `/${MARK_REQ}`);
        expect(r.code).not.toBe(0);
      });
      expect(served()).toBe(before);
      expect(cap.clear).toBe(0);
      expect(cap.other).toBe(0);
      expect(cap.raw).not.toContain(MARK_REQ);
    });

    test('UDP and ICMP from the client to a tls-channel address never leave', async () => {
      const cap = await onWan(() => {
        fromClient(['ping', '-c', '2', '-i', '0.2', '-W', '1', PROT4]);
        fromClient(['bash', '-c', `echo ${MARK_REQ} > /dev/udp/${PROT4}/8080`]);
      });
      expect(cap.other).toBe(0);
      expect(cap.raw).not.toContain(MARK_REQ);
    });

    test('the router\'s dnsseal killed during a transfer: the transfer fails, nothing in clear; restarted, it works again', async () => {
      expect(resolve('prot.seal.test')).toBe(PROT4);
      const cap = await onWan(async () => {
        const dl = Bun.spawn(['ip', 'netns', 'exec', lab.c, 'curl', '-sS', '--limit-rate', '4M', '--max-time', '30', '-o', '/dev/null', '-w', '%{size_download}', `http://${PROT4}:8080/big`], { stdout: 'pipe', stderr: 'pipe' });
        // wait until the flow is open in the relay and bytes went down
        const end = Date.now() + 20_000;
        for (;;) {
          const st = JSON.parse(lab.cli(['status', '--json']).out || '{}') as { tls?: { open: { relay: number }; bytes: { relay: { downstream: number } } } };
          if ((st.tls?.open.relay ?? 0) >= 1 && (st.tls?.bytes.relay.downstream ?? 0) > 1 << 20) break;
          if (Date.now() > end) throw new Error('the download did not start');
          await Bun.sleep(100);
        }
        daemon.proc.kill('SIGKILL');
        await daemon.proc.exited;
        const code = await dl.exited;
        const got = Number(await new Response(dl.stdout).text());
        expect(code).not.toBe(0);
        expect(got).toBeGreaterThan(0);
        expect(got).toBeLessThan(BIG_MB << 20);
        // with the daemon gone, the kernel still steers: a new connection gets nothing through
        const r = curl(PROT4, `/${MARK_REQ}`, 3);
        expect(r.code).not.toBe(0);
      });
      expect(cap.clear).toBe(0);
      expect(cap.other).toBe(0);
      expect(cap.raw).not.toContain(MARK_REQ);
      await startRouter('gateway');
      expect(resolve('prot.seal.test')).toBe(PROT4);
      const r = curl(PROT4, '/again');
      expect(r.out).toBe(`${MARK_RES} /again\n`);
    }, 120_000);
  });

  describe('host mode', () => {
    beforeAll(async () => {
      await startRouter('host');
    }, 300_000);
    afterAll(async () => {
      await stopRouter();
    });

    test.each([
      ['peer', 'prot.seal.test', PROT4],
      ['tunnel', 'hostp.seal.test', HOST4],
    ])('curl from a process on the router through a %s channel works, and the WAN holds TLS to 9853 only', async (_kind, name, addr) => {
      expect(fromRouter(['dig', '@127.0.0.1', '+short', '+tries=1', '+timeout=5', name, 'A']).out.trim()).toBe(addr);
      await sealedExchange(() => fromRouter(['curl', '-sS', '--max-time', '10', '-H', `X-Mark: ${MARK_REQ}`, `http://${addr}:8080/${MARK_REQ}`]));
    });

    test('status says the relay intercepts', () => {
      const s = JSON.parse(lab.cli(['status', '--json']).out) as { tls: { intercepting: boolean } };
      expect(s.tls.intercepting).toBe(true);
    });
  });
});
