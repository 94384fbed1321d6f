/**
 * The real dist/dnsseal in intercept mode (#6, root): client — node — internet namespaces (the
 * daemon lab), but the client's default gateway is NOT the node: it has no default route at
 * all, only the pool prefix routed to the node, and the node is its DNS server. knotd serves
 * seal.test in the internet namespace; charon on the node holds a tunnel channel to a hub that
 * does not answer IKE (no CHILD_SA on any kernel, so XFRM's trap holds marked packets).
 *
 * - a protected name is answered with pool addresses (v4 and v6), never the real ones; the
 *   real addresses are in the registry and `dnsseal list` shows intercept ↔ real ↔ name ↔ group;
 * - an unprotected name is answered with its real address, unchanged;
 * - the client's packets to the intercept address reach the node's prerouting with the real
 *   destination and the channel mark (the NAT ran in tc ingress, then the marker), and nothing
 *   of it leaves the WAN in clear (tcpdump), nothing arrives at the real server.
 *
 * End to end through ESP belongs to the kernel lab; the NAT's own round trip without XFRM is
 * test/netns/intercept-nat.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { channelMark } from '../../src/policy/types.ts';
import type { LabCharon } from '../ipsec/charon-lab.ts';
import { DaemonLab, HUB4, labSkipReason, LAN4, NET4, OPEN4, PROT4, PROT6, readPcap, requireDist, type Dnsseal } from './fixtures/daemon-lab.ts';
import { inNs, nftCount } from './netns.ts';

const skip = labSkipReason() ?? (Bun.which('/usr/lib/ipsec/charon') ? undefined : 'charon missing (make deps)');
if (skip) console.log(`netns daemon intercept: skipping: ${skip}`);

const MARK = channelMark(1);
const POOL4 = '100.64.0.0/24';
const POOL6 = 'fd7a:5ea1::/96';
const inPool4 = (a: string) => /^100\.64\.0\.\d+$/.test(a);

interface Row {
  group: number;
  address: string;
  channel: string;
  names: string[];
  intercept?: string;
}

describe.skipIf(skip !== undefined)('netns daemon intercept (dist/dnsseal)', () => {
  const lab = new DaemonLab('x');
  let charon: LabCharon;
  let daemon: Dnsseal;
  let capture: ReturnType<typeof Bun.spawn>;
  const pcap = `${lab.dir}/wan.pcap`;
  const dig = (name: string, type: string) => inNs(lab.c, ['dig', `@${LAN4}`, '+tries=1', '+timeout=3', '+short', name, type], { timeoutMs: 10_000 }).out.trim();
  const list = (): Row[] => {
    const r = lab.cli(['list', '--json']);
    if (r.code !== 0) throw new Error(`dnsseal list failed (${r.code}): ${r.err}`);
    return JSON.parse(r.out) as Row[];
  };

  beforeAll(async () => {
    requireDist();
    lab.topology();
    // Not the client's gateway: no default route, only the pools lead to the node.
    inNs(lab.c, ['ip', 'route', 'del', 'default'], { ok: true });
    inNs(lab.c, ['ip', '-6', 'route', 'del', 'default'], { ok: true });
    inNs(lab.c, ['ip', 'route', 'add', POOL4, 'via', LAN4], { ok: true });
    inNs(lab.c, ['ip', '-6', 'route', 'add', POOL6, 'via', 'fd00:77:1::1'], { ok: true });
    lab.nft(
      lab.r,
      `chain pre { type filter hook prerouting priority 0;
        iif lan0 ip daddr ${PROT4} meta mark ${MARK} counter comment "translated4"
        iif lan0 ip daddr 100.64.0.0/24 counter comment "untranslated4"
      }`,
    );
    lab.nft(lab.i, `chain input_c { type filter hook input priority 0; ip daddr ${PROT4} counter comment "arrived4"
      }`);
    await lab.startKnot();
    charon = await lab.startCharon();
    capture = await lab.capture(lab.r, 'wan0', pcap);
    daemon = await lab.startDnssealClaimed([
      '--config', 'none', '--mode', 'intercept', '--datapath', 'ebpf', '--lan', 'lan0', '--wan', 'wan0',
      '--listen', `${LAN4}:53`, '--upstream', `${NET4}:53`, '--intercept-pool', POOL4, '--intercept-pool', POOL6,
      '--channel', `hub=tunnel:${HUB4},identity=hub.test`, '--protect', 'prot.seal.test=hub',
      '--vici-socket', charon.socketPath, '--local-id', 'router.test', '--min-hold', '60', '--log-level', 'debug',
    ]);
  }, 300_000);

  afterAll(async () => {
    await lab.destroy();
  }, 60_000);

  test('answers a protected name with pool addresses and lists intercept ↔ real ↔ name ↔ group when the node is in intercept mode', async () => {
    const a = dig('prot.seal.test', 'A');
    const aaaa = dig('prot.seal.test', 'AAAA');
    expect(inPool4(a)).toBe(true);
    expect(aaaa).toMatch(/^fd7a:5ea1::/);
    const rows = list();
    expect(rows.find((r) => r.address === PROT4)).toMatchObject({ group: 0, channel: 'hub', names: ['prot.seal.test'], intercept: a });
    expect(rows.find((r) => r.address === PROT6)).toMatchObject({ group: 0, channel: 'hub', intercept: aaaa });
    const log = await Bun.file(daemon.logPath).text();
    expect(log).toContain('intercept: using store ebpf');
  });

  test('answers an unprotected name with its real address when it matches no rule', () => {
    expect(dig('open.seal.test', 'A')).toBe(OPEN4);
  });

  test('translates and marks packets to the intercept address and lets none out in clear when no SA is up', async () => {
    const a = dig('prot.seal.test', 'A');
    const ping = inNs(lab.c, ['ping', '-c', '3', '-i', '0.2', '-W', '1', a], { timeoutMs: 10_000 });
    expect(ping.code).not.toBe(0); // held by XFRM's trap (no SA), not answered in clear
    expect(nftCount(lab.r, 'translated4')).toBeGreaterThanOrEqual(3);
    expect(nftCount(lab.r, 'untranslated4')).toBe(0);
    expect(nftCount(lab.i, 'arrived4')).toBe(0);
    const clear = await lab.readCapture(capture, pcap, `host ${PROT4} and not esp and not (udp port 4500)`);
    expect(clear).toEqual([]);
    expect(readPcap(pcap, `dst host ${a}`)).toEqual([]);
  });
});
