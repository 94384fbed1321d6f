/**
 * charon not running when the daemon starts (boot ordering, a restart) must not take DNS down
 * (issue #11 item 2): the daemon starts and answers; a tunnel-protected name is registered
 * (its mark has no XFRM policy yet, so the guard drops its packets); a peer name negotiating
 * before the answer gets SERVFAIL and its address stays blocked; `status` and
 * `dnsseal_ipsec_vici_up` say strongSwan is awaited. When charon appears (FakeCharon on the
 * configured socket), the channels are loaded and the state flips. Loopback only.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ask, makeQuery } from '../policy-server/helpers.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { startDaemon, type StartedDaemon } from './start.ts';

const ADDRS: Record<string, string> = { 'www.public.test': '198.51.100.7', 'app.corp.test': '203.0.113.10', 'x.partner.test': '203.0.113.20' };

/** Polls `cond` until it holds; fails naming `what` after `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 8_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

async function query(port: number, name: string): Promise<{ rcode: string; addrs: string[] }> {
  const a = dnsPacket.decode(Buffer.from(await ask('udp', port, makeQuery(name), '127.0.0.1', 5000))) as dnsPacket.DecodedPacket & { rcode: string };
  return { rcode: a.rcode, addrs: (a.answers ?? []).flatMap((r) => (r.type === 'A' ? [String(r.data)] : [])) };
}

describe('daemon (charon absent at start)', () => {
  let dir: string;
  let upstream: FakeUpstream;
  let d: StartedDaemon;
  let charon: FakeCharon | undefined;
  let port: number;
  let control: string;
  let socket: string;
  let cfg: Config;
  const metrics = new Metrics();
  const dp = new FakeDatapath({ clock: realClock });
  const status = async () => ((await controlRequest(control, { cmd: 'status' })) as { ipsec: { kind: string; vici: { state: string; since: string; last_error: string | null } } }).ipsec;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-nocharon-'));
    socket = join(dir, 'charon.vici'); // nothing listens here yet
    control = join(dir, 'control.sock');
    upstream = await FakeUpstream.start((q, t) => t.answerFor(q, { answers: [{ name: q.name, type: 'A', ttl: 60, class: 'IN', data: ADDRS[q.name] ?? '192.0.2.99' }] }));
    const text = [
      'mode: host',
      'listen: [127.0.0.1:5399]',
      `upstreams: { default: 127.0.0.1:${upstream.port} }`,
      'datapath: ebpf', // the FakeDatapath below stands in for the eBPF backend
      `vici_socket: ${socket}`,
      `control: ${control}`,
      'channels:',
      '  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }',
      '  partner: { kind: peer, esp: aes256gcm16, negotiate_timeout: 300 }',
      'tables:',
      '  default:',
      '    - { match: "*.corp.test", channel: hub }',
      '    - { match: "*.partner.test", channel: partner }',
      '',
    ].join('\n');
    cfg = { ...loadConfigText(text, join(dir, 'dnsseal.yaml'), new Map(), { readFile: () => '', resolvTexts: () => [] }), listen: ['127.0.0.1:0'] };
    // the real IPsec back end (strongSwan over VICI), not the tests' default NoIpsec
    d = await startDaemon(cfg, { log: silentLogger, metrics, ebpf: () => dp, ipsec: undefined }, 'daemon without charon');
    port = d.info.listeners.find((l) => l.transport === 'udp')!.port;
  });

  afterAll(async () => {
    d?.signals.emit('SIGTERM');
    expect(await d?.exit).toBe(0);
    await charon?.stop();
    upstream?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves DNS, registers tunnel names and blocks peer names when charon is not running', async () => {
    expect(d.info.ipsec).toBe('strongswan');
    expect(await query(port, 'www.public.test')).toEqual({ rcode: 'NOERROR', addrs: ['198.51.100.7'] });
    // tunnel: answered once in the map; its mark has no XFRM policy yet, so the guard drops it
    expect(await query(port, 'app.corp.test')).toEqual({ rcode: 'NOERROR', addrs: ['203.0.113.10'] });
    expect(d.info.registry.list().find((e) => e.addr === '203.0.113.10')?.channel).toBe('hub');
    expect(dp.list().some((e) => e.key.addr === '203.0.113.10')).toBe(true);
    // peer, negotiate before-answer: no SA can come up → SERVFAIL, address kept blocked
    expect((await query(port, 'x.partner.test')).rcode).toBe('SERVFAIL');
    expect(d.info.registry.list().find((e) => e.addr === '203.0.113.20')?.blocked).toBeDefined();
    const st = await status();
    expect(st.vici.state).toBe('waiting');
    expect(st.vici.last_error).toContain(socket);
    expect(metrics.expose()).toContain('dnsseal_ipsec_vici_up 0');
  });

  test('loads the channels and reports connected when charon appears', async () => {
    charon = await FakeCharon.start(socket);
    await until('the hub tunnel loaded and trapped in charon', () => charon!.installed.has(tunnelConnName(cfg.channels[0]!)));
    await until('status to say connected', async () => (await status()).vici.state === 'connected');
    expect(metrics.expose()).toContain('dnsseal_ipsec_vici_up 1');
    // the peer now comes up before the answer, as with charon running from the start
    expect(await query(port, 'x.partner.test')).toEqual({ rcode: 'NOERROR', addrs: ['203.0.113.20'] });
    expect(d.info.registry.list().find((e) => e.addr === '203.0.113.20')?.blocked).toBeUndefined();
  });
});
