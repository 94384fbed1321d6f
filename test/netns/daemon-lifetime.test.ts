/**
 * Entry lifetime with the real dist/dnsseal (root), gateway mode, `--min-hold 1 --idle 3`:
 * two names with TTL 5. A client keeps a flow running to one of them well past its TTL: that
 * entry stays live (the marker stamps last_seen) while the other, which sees no packet, is retired
 * once expired and idle (issue #11: still in the map, never clear; it goes after `retire`, 24 h).
 * After the flow stops the first entry retires too. The waits are bounded
 * polls for a state (`dnsseal list`), not assertions about how fast the collector is; the only
 * "not yet" check is one the collector cannot violate: an entry idle for less than `idle`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { channelMark } from '../../src/policy/types.ts';
import type { LabCharon } from '../ipsec/charon-lab.ts';
import { DaemonLab, HUB4, labSkipReason, LAN4, LIVE4, NET4, PROT4, requireDist, type Dnsseal, type ListRow } from './fixtures/daemon-lab.ts';
import { inNs, nftCount } from './netns.ts';

const skip = labSkipReason() ?? (Bun.which('/usr/lib/ipsec/charon') ? undefined : 'charon missing (make deps)');
if (skip) console.log(`netns daemon lifetime: skipping: ${skip}`);

const MARK = channelMark(1);

describe.skipIf(skip !== undefined)('netns daemon lifetime (dist/dnsseal, TTL 5, --min-hold 1 --idle 3)', () => {
  const lab = new DaemonLab('l');
  let charon: LabCharon;
  let daemon: Dnsseal;
  const row = (addr: string): ListRow | undefined => lab.listJson().find((r) => r.address === addr);
  /** Polls `dnsseal list` until `cond` holds, at most `ms`; returns whether it did. */
  const until = async (cond: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) return false;
      await Bun.sleep(250);
    }
    return true;
  };

  beforeAll(async () => {
    requireDist();
    lab.topology();
    lab.nft(lab.r, `chain pre { type filter hook prerouting priority 0; iif lan0 ip daddr ${LIVE4} meta mark ${MARK} counter comment "marked_live"; }`);
    await lab.startKnot();
    charon = await lab.startCharon();
    daemon = await lab.startDnssealClaimed([
      '--config', 'none', '--mode', 'gateway', '--datapath', 'ebpf', '--lan', 'lan0', '--wan', 'wan0',
      '--listen', `${LAN4}:53`, '--upstream', `${NET4}:53`,
      '--channel', `hub=tunnel:${HUB4},identity=hub.test`, '--protect', 'prot.seal.test=hub', '--protect', 'live.seal.test=hub',
      '--vici-socket', charon.socketPath, '--local-id', 'router.test', '--min-hold', '1', '--idle', '3', '--log-level', 'debug',
    ]);
  }, 300_000);

  afterAll(async () => {
    await lab.destroy();
  }, 60_000);

  test('keeps the entry of a flow running past its TTL live and retires the idle one when both have expired', async () => {
    const dig = (n: string) => inNs(lab.c, ['dig', `@${LAN4}`, '+tries=1', '+short', n, 'A']).out.trim();
    expect(dig('live.seal.test')).toBe(LIVE4);
    expect(dig('prot.seal.test')).toBe(PROT4);
    const t0 = Date.now();
    expect(row(LIVE4)?.expiresInS).toBeLessThanOrEqual(5);
    expect(row(PROT4)).toBeDefined();

    // the flow: 5 echo requests a second, bounded to 24 s and 120 packets (the idle entry's
    // removal is due at TTL 5 + idle 3 + one gc period of 5 s: the flow outlasts it)
    const flow = lab.spawnIn(lab.c, ['ping', '-c', '120', '-i', '0.2', '-w', '24', LIVE4]);
    // the idle entry retires once TTL 5 + idle 3 have passed (bounded wait for the state)
    const protGone = await until(() => row(PROT4)?.retired === true, 20_000);
    const at = (Date.now() - t0) / 1000;
    expect(protGone).toBe(true);
    expect(at).toBeGreaterThan(5); // not before its TTL ran out (it saw no packet at all)
    // … while the flowing one, past its TTL as well, stays
    const live = row(LIVE4);
    console.log(`netns daemon lifetime: idle entry retired after ${at.toFixed(1)} s; flowing entry then: ${JSON.stringify(live)}`);
    expect(flow.exitCode).toBeNull(); // the flow still runs
    expect(live).toBeDefined();
    expect(live!.retired).toBeUndefined();
    expect(live!.expiresInS).toBe(0); // its hold ran out …
    expect(live!.idleS).not.toBeNull();
    expect(live!.idleS!).toBeLessThanOrEqual(1); // … but packets keep it
    expect(nftCount(lab.r, 'marked_live')).toBeGreaterThan(20);

    // still there later in the flow, well past TTL + idle
    while (Date.now() - t0 < 11_000 && flow.exitCode === null) await Bun.sleep(250);
    expect(flow.exitCode).toBeNull();
    expect(row(LIVE4)?.retired).toBeUndefined();

    await flow.exited;
    const exitedAt = Date.now();
    const stoppedAt = (exitedAt - t0) / 1000;
    // just stopped: idle for less than `idle` (3 s), the collector must keep it live. This says
    // something only while the entry is surely less than 3 s idle: a loaded machine can take
    // seconds to run `dnsseal list`, and then the entry may rightly be gone.
    const justStopped = row(LIVE4);
    const listedAfterMs = Date.now() - exitedAt;
    if (listedAfterMs < 2000) expect(justStopped?.retired).toBeUndefined();
    else console.log(`netns daemon lifetime: NOT CHECKED that the just-stopped entry is kept: the list came ${listedAfterMs} ms after the flow ended`);
    const liveGone = await until(() => row(LIVE4)?.retired === true, 20_000);
    console.log(`netns daemon lifetime: flowing entry retired ${((Date.now() - t0) / 1000).toFixed(1)} s after the answer (flow ended at ${stoppedAt.toFixed(1)} s)`);
    expect(liveGone).toBe(true);
    expect(row(PROT4)?.retired).toBe(true); // still there: `retire` is 24 h
    const log = await Bun.file(daemon.logPath).text();
    expect(log).toContain('gc retired or removed entries');
  }, 120_000);
});
