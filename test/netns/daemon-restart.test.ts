/**
 * kill -9 continuity with the real dist/dnsseal (root), gateway mode, same lab as
 * daemon-gateway.test.ts. A client pings a protected address (bounded in count and time) while
 * the daemon is killed with SIGKILL: the pinned programs keep marking the flow and the leak
 * guard keeps dropping it (charon is stopped first, so the guard — not XFRM's trap — is what
 * stands between the flow and the wire), nothing reaches the internet namespace, and the WAN
 * capture has zero clear packets to the address. A restarted dnsseal adopts the entry from the
 * pinned map: `dnsseal list` shows it with its expiry, and the flow is still marked.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { channelMark } from '../../src/policy/types.ts';
import { MAP_EXPIRY_GRAIN_MS } from '../../src/registry/entry.ts';
import type { LabCharon } from '../ipsec/charon-lab.ts';
import {
  DaemonLab, HUB4, kernelCounters, labSkipReason, LAN4, NET4, PIN_ROOT, PROT4, readPcap, requireDist, type Dnsseal,
} from './fixtures/daemon-lab.ts';
import { waitFor } from './fixtures/dp-watch.ts';
import { inNs, nftCount } from './netns.ts';

const skip = labSkipReason() ?? (Bun.which('/usr/lib/ipsec/charon') ? undefined : 'charon missing (make deps)');
if (skip) console.log(`netns daemon restart: skipping: ${skip}`);

const MARK = channelMark(1);

describe.skipIf(skip !== undefined)('netns daemon restart (dist/dnsseal, kill -9)', () => {
  const lab = new DaemonLab('k');
  let charon: LabCharon;
  let daemon: Dnsseal;
  let capture: ReturnType<typeof Bun.spawn>;
  let flow: ReturnType<typeof Bun.spawn>;
  const pcap = `${lab.dir}/wan.pcap`;
  const args = () => [
    '--config', 'none', '--mode', 'gateway', '--datapath', 'ebpf', '--lan', 'lan0', '--wan', 'wan0',
    '--listen', `${LAN4}:53`, '--upstream', `${NET4}:53`,
    '--channel', `hub=tunnel:${HUB4},identity=hub.test`, '--protect', 'prot.seal.test=hub',
    '--vici-socket', charon.socketPath, '--local-id', 'router.test', '--min-hold', '30', '--log-level', 'debug',
  ];
  const marked = () => nftCount(lab.r, 'marked4');

  beforeAll(async () => {
    requireDist();
    lab.topology();
    lab.nft(
      lab.r,
      `chain pre { type filter hook prerouting priority 0;
        iif lan0 ip daddr ${PROT4} meta mark ${MARK} counter comment "marked4"
        iif lan0 ip daddr ${PROT4} meta mark != ${MARK} counter comment "unmarked4"
      }`,
    );
    lab.nft(lab.i, `chain input_c { type filter hook input priority 0; ip daddr ${PROT4} counter comment "arrived4"; }`);
    await lab.startKnot();
    charon = await lab.startCharon();
    capture = await lab.capture(lab.r, 'wan0', pcap);
    daemon = await lab.startDnssealClaimed(args());
  }, 300_000);

  afterAll(async () => {
    await lab.destroy();
  }, 60_000);

  test('keeps marking and dropping a running flow when dnsseal is killed with SIGKILL', async () => {
    expect(inNs(lab.c, ['dig', `@${LAN4}`, '+tries=1', '+short', 'prot.seal.test', 'A']).out.trim()).toBe(PROT4);
    await lab.charons.stopCharon(charon); // its trap would hold the packets before the guard sees them
    const end = Date.now() + 10_000;
    while (lab.xfrmPolicies(lab.r).includes('mark 0x') && Date.now() < end) await Bun.sleep(100);
    expect(lab.xfrmPolicies(lab.r)).not.toContain('mark 0x');

    // ~40 s at most, 10 echo requests a second; it runs across the kill and the restart
    flow = lab.spawnIn(lab.c, ['ping', '-c', '400', '-i', '0.1', '-w', '40', PROT4]);
    await waitFor(() => marked() > 5, 15_000, 100);
    const m0 = marked();
    const k0 = kernelCounters();
    expect(m0, 'marked packets of the flow before the kill').toBeGreaterThan(5);

    daemon.proc.kill('SIGKILL');
    await daemon.proc.exited;
    expect(daemon.proc.signalCode).toBe('SIGKILL');
    // the flow keeps running while we read: the kernel readings enclose the nftables ones, so
    // every packet nftables counted in between was also counted by the guard in between
    const k1 = kernelCounters();
    const m1 = marked();
    await waitFor(() => marked() - m1 >= 10, 15_000, 100);
    const m2 = marked();
    const k2 = kernelCounters();
    console.log(`netns daemon restart: while dead: marked ${m2 - m1} (nft), ${k2.marked - k1.marked} (kernel), guard drops ${k2.guardDrops - k1.guardDrops}`);
    expect(m2 - m1, 'marked packets of the flow while dnsseal is dead').toBeGreaterThanOrEqual(10);
    expect(Number(k2.marked - k1.marked)).toBeGreaterThanOrEqual(m2 - m1);
    expect(Number(k2.guardDrops - k1.guardDrops)).toBeGreaterThanOrEqual(m2 - m1);
    expect(Number(k0.guardDrops)).toBeGreaterThanOrEqual(m0); // before the kill too (fresh pins)
    expect(nftCount(lab.r, 'unmarked4')).toBe(0);
    expect(nftCount(lab.i, 'arrived4')).toBe(0);
    // the kernel state outlived the process
    for (const p of ['maps/dnsseal_dests4', 'maps/dnsseal_dests6', 'links/tcx_lan_lan0', 'links/tcx_wan_wan0']) expect(existsSync(`${PIN_ROOT}/${p}`)).toBe(true);
  }, 60_000);

  test('adopts the entry with its expiry and keeps marking the flow when dnsseal restarts', async () => {
    charon = await lab.startCharon(); // a new charon: dnsseal needs VICI to start
    daemon = lab.startDnsseal(args(), 'dnsseal-2.log');
    await lab.waitReady(daemon);
    const rows = lab.listJson();
    const row = rows.find((r) => r.address === PROT4);
    console.log(`netns daemon restart: after restart: ${JSON.stringify(row)}`);
    expect(row).toBeDefined();
    expect(row!.names).toEqual(['(adopted)']);
    expect(row!.channel).toBe('hub');
    expect(row!.expiresInS).toBeGreaterThan(0);
    // the hold the map kept: --min-hold (30 s, the answer's TTL is below it), rounded up to the
    // map's grain (10 s, src/registry/entry.ts mapExpiry): never shorter, at most one grain longer
    expect(row!.expiresInS).toBeLessThanOrEqual(30 + MAP_EXPIRY_GRAIN_MS / 1000);
    expect(row!.idleS).not.toBeNull(); // the flow's packets stamp last_seen
    expect(row!.idleS!).toBeLessThanOrEqual(2);
    const log = await Bun.file(daemon.logPath).text();
    expect(log).toMatch(/adopted entries from the pinned map.* adopted=1/);
    const m = marked();
    await waitFor(() => marked() - m >= 5, 15_000, 100);
    expect(marked() - m, 'marked packets of the flow after the restart').toBeGreaterThanOrEqual(5);
    // a new answer for the name takes over the adopted entry
    expect(inNs(lab.c, ['dig', `@${LAN4}`, '+tries=1', '+short', 'prot.seal.test', 'A']).out.trim()).toBe(PROT4);
    expect(lab.listJson().find((r) => r.address === PROT4)!.names).toContain('prot.seal.test');
  }, 90_000);

  test('tcpdump on the WAN veth sees zero clear packets to the protected address across kill and restart', async () => {
    flow.kill('SIGINT');
    await flow.exited;
    const lines = await lab.readCapture(capture, pcap, `dst host ${PROT4} and not esp and not (udp port 4500)`);
    const all = readPcap(pcap, 'ip or ip6');
    console.log(`netns daemon restart: WAN capture: ${lines.length} clear packets to ${PROT4} of ${all.length} captured; flow marked ${marked()} (nft)`);
    expect(lines).toEqual([]);
    expect(all.length).toBeGreaterThan(0);
    expect(nftCount(lab.i, 'arrived4')).toBe(0);
  });
});
