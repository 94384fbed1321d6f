/**
 * eBPF backend specifics beyond the shared conformance suite (root only): the pin-root lock,
 * restart adoption (entries and last_seen survive), the two text forms of one IPv4 address,
 * client groups and channels replacing their tables, map_full metric, teardown refusals.
 */
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { Bpf } from '../../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS } from '../../../src/datapath/ebpf/pins.ts';
import { teardown } from '../../../src/datapath/teardown.ts';
import { Metrics } from '../../../src/ops/metrics.ts';
import { channelMark } from '../../../src/policy/types.ts';
import { FakeClock, realClock } from '../../../src/util/clock.ts';
import { DnssealError } from '../../../src/util/errors.ts';
import { silentLogger } from '../../../src/util/log.ts';
import { frame, skbCtx, ctxMark } from '../../bpf/packets.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from './helpers.ts';

const skip = privSkipReason();
if (skip) console.log(`ebpf backend: skipping: ${skip}`);
const ROOT = scratchPinRoot('backend');
const VAL = { channelId: 1, mark: channelMark(1), flags: 0 };

function thrown(fn: () => unknown): DnssealError {
  try {
    fn();
  } catch (err) {
    return err as DnssealError;
  }
  throw new Error('did not throw');
}

(skip ? describe.skip : describe)('datapath/ebpf backend', () => {
  const open: EbpfDatapath[] = [];
  const make = (extra = {}) => {
    const dp = makeDp(ROOT, extra);
    open.push(dp);
    return dp;
  };
  beforeEach(async () => {
    for (const dp of open.splice(0)) dp.close();
    await wipe(ROOT);
  });
  afterAll(async () => {
    for (const dp of open.splice(0)) dp.close();
    await wipe(ROOT);
  });

  test('a second backend on the same pins is refused with busy when one is running', () => {
    make();
    const err = thrown(() => makeDp(ROOT));
    expect(err.code).toBe('busy');
    expect(err.message).toMatch(/another dnsseal process is using .*dnsseal-test-backend/);
  });

  test('restart adopts entries and their last_seen when the backend is closed and created again', () => {
    const dp = make();
    dp.upsert({ group: 0, addr: '192.0.2.1' }, VAL);
    dp.upsert({ group: 7, addr: '2001:db8::1' }, { ...VAL, flags: 1 });
    const bpf = new Bpf();
    const prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.lanIn));
    bpf.testRun(prog, frame({ src: '10.0.0.1', dst: '192.0.2.1', l4: 'tcp' }), { ctx: skbCtx() });
    bpf.close(prog);
    const seen = dp.lastSeen({ group: 0, addr: '192.0.2.1' });
    expect(seen).toBeDefined();
    dp.close();
    const again = make();
    expect(again.list().map((e) => [e.key.group, e.key.addr, e.value.flags]).sort()).toEqual([
      [0, '192.0.2.1', 0],
      [7, '2001:db8::1', 1],
    ]);
    expect(Math.abs(again.lastSeen({ group: 0, addr: '192.0.2.1' })! - seen!)).toBeLessThanOrEqual(1);
  });

  test('upsert keeps last_seen when it overwrites an entry', () => {
    const dp = make();
    const key = { group: 0, addr: '192.0.2.9' };
    dp.upsert(key, VAL);
    const bpf = new Bpf();
    const prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.lanIn));
    bpf.testRun(prog, frame({ src: '10.0.0.1', dst: key.addr, l4: 'udp' }), { ctx: skbCtx() });
    bpf.close(prog);
    const seen = dp.lastSeen(key);
    dp.upsert(key, { ...VAL, channelId: 2, mark: channelMark(2) });
    expect(dp.lastSeen(key)).toBe(seen!);
  });

  test('upsert gives the same map whatever its known hint says: a wrong guess inserts or overwrites (last_seen, the other form, expiry kept)', () => {
    const dp = make();
    const bpf = new Bpf();
    const prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.lanIn));
    const v4 = { group: 0, addr: '192.0.2.77' };
    const mapped = { group: 0, addr: '::ffff:c000:24d' };
    const t0 = realClock.monoMs() + 3_600_000;
    const expiries = () => dp.list().map((e) => [e.key.addr, e.value.channelId, Math.round(e.value.expiresMs! - t0)] as const).sort();
    // known but absent: inserted
    dp.upsert(v4, { ...VAL, expiresMs: t0 }, true);
    expect(expiries()).toEqual([[v4.addr, 1, 0]]);
    bpf.testRun(prog, frame({ src: '10.0.0.1', dst: v4.addr, l4: 'udp' }), { ctx: skbCtx() });
    const seen = dp.lastSeen(v4);
    expect(seen).toBeDefined();
    // not known but present (the other text form of the same kernel entry): overwritten in place
    dp.upsert(mapped, { ...VAL, channelId: 2, mark: channelMark(2), expiresMs: t0 + 1000 }, false);
    // known and present: a refresh
    dp.upsert(v4, { ...VAL, channelId: 2, mark: channelMark(2), expiresMs: t0 + 2000 }, true);
    expect(dp.maps.rawDests()).toHaveLength(1);
    expect(dp.lastSeen(v4)).toBe(seen!);
    expect(dp.lastSeen(mapped)).toBe(seen!);
    expect(expiries()).toEqual([
      [v4.addr, 2, 2000],
      [mapped.addr, 2, 2000],
    ]);
    bpf.close(prog);
  });

  test('lastSeen is in the injected clock base when the clock is fake', () => {
    const clock = new FakeClock(1_700_000_000_000, 5_000);
    const dp = make({ clock });
    const key = { group: 0, addr: '192.0.2.8' };
    dp.upsert(key, VAL);
    const bpf = new Bpf();
    const prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.lanIn));
    bpf.testRun(prog, frame({ src: '10.0.0.1', dst: key.addr, l4: 'udp' }), { ctx: skbCtx() });
    bpf.close(prog);
    expect(Math.abs(dp.lastSeen(key)! - 5_000)).toBeLessThan(1000);
  });

  test('the IPv4 and IPv4-mapped forms share one kernel entry until the last form is removed', () => {
    const dp = make();
    const v4 = { group: 0, addr: '192.0.2.44' };
    const mapped = { group: 0, addr: '::ffff:c000:22c' };
    dp.upsert(v4, VAL);
    dp.upsert(mapped, VAL);
    expect(dp.list().map((e) => e.key.addr).sort()).toEqual(['192.0.2.44', '::ffff:c000:22c']);
    expect(dp.maps.rawDests()).toHaveLength(1);
    dp.remove(v4);
    expect(dp.list().map((e) => e.key.addr)).toEqual(['::ffff:c000:22c']);
    expect(dp.lastSeen(v4)).toBeUndefined();
    dp.remove(v4); // removing a form that is no longer registered changes nothing
    expect(dp.maps.rawDests()).toHaveLength(1);
    dp.remove(mapped);
    expect(dp.maps.rawDests()).toHaveLength(0);
  });

  test.each([
    ['not an address', 'example.com'],
    ['an IPv4 with a bad octet', '192.0.2.256'],
    ['empty', ''],
  ])('upsert throws bad_address when the key is %s', (_n, addr) => {
    const dp = make();
    expect(thrown(() => dp.upsert({ group: 0, addr }, VAL)).code).toBe('bad_address');
  });

  test('client groups replace the table when set again', () => {
    const dp = make();
    dp.upsert({ group: 5, addr: '192.0.2.50' }, VAL);
    const bpf = new Bpf();
    const prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.lanIn));
    const markFor = (src: string) => ctxMark(bpf.testRun(prog, frame({ src, dst: '192.0.2.50', l4: 'tcp' }), { ctx: skbCtx() }).ctxOut!);
    dp.setClientGroups([{ cidr: '10.5.0.0/16', group: 5 }]);
    expect(markFor('10.5.1.1')).toBe(VAL.mark);
    dp.setClientGroups([{ cidr: '10.6.0.0/16', group: 5 }]);
    expect(markFor('10.5.1.1')).toBe(0);
    expect(markFor('10.6.1.1')).toBe(VAL.mark);
    bpf.close(prog);
    expect(thrown(() => dp.setClientGroups([{ cidr: '10.0.0.1/8', group: 1 }])).code).toBe('bad_cidr');
  });

  test('UDP 500/4500 to a channel\'s gateway or peer not sent by charon is dropped whatever the channel row says', () => {
    // Issue #11 item 7: the exemption was by port number to the gateway / the peer (any
    // application's or LAN client's UDP 4500 left in clear). A BPF_PROG_RUN packet has no socket,
    // like a forwarded one: it is never charon's, so it is dropped with every row below.
    const dp = make();
    const id = 41736;
    const peer = '203.0.113.9';
    dp.upsert({ group: 0, addr: peer }, { channelId: id, mark: channelMark(id), flags: 0 });
    const bpf = new Bpf();
    const guard = bpf.objGet(new PinPaths(ROOT).prog(PROGS.wanOut));
    const run = (l4: 'udp' | 'tcp', sport: number, dport: number) =>
      bpf.testRun(guard, frame({ src: '10.0.0.1', dst: peer, l4, sport, dport }), { ctx: skbCtx() }).retval;
    try {
      for (const row of [
        { id, mark: channelMark(id), up: true },
        { id, mark: channelMark(id), up: true, peer: true },
        { id, mark: channelMark(id), up: false, gateway: peer, peer: false },
      ]) {
        dp.setChannels([row]);
        expect(run('udp', 500, 500)).toBe(2);
        expect(run('udp', 4500, 4500)).toBe(2);
        expect(run('udp', 45000, 4500)).toBe(2);
        expect(run('tcp', 500, 443)).toBe(2);
      }
    } finally {
      bpf.close(guard);
    }
  });

  test('map_full increments the metric and throws map_full when the map is full', () => {
    const metrics = new Metrics();
    const dp = make({ capacity: 4, metrics });
    for (let i = 0; i < 4; i++) dp.upsert({ group: 0, addr: `192.0.2.${i}` }, VAL);
    expect(thrown(() => dp.upsert({ group: 0, addr: '192.0.2.200' }, VAL)).code).toBe('map_full');
    expect(metrics.expose()).toMatch(/^dnsseal_datapath_map_full_total 1$/m);
  });

  test('kernel counters appear in the metrics exposition when packets were dropped', () => {
    const metrics = new Metrics();
    const dp = make({ metrics });
    dp.upsert({ group: 0, addr: '192.0.2.60' }, VAL);
    const bpf = new Bpf();
    const guard = bpf.objGet(new PinPaths(ROOT).prog(PROGS.wanOut));
    bpf.testRun(guard, frame({ src: '10.0.0.1', dst: '192.0.2.60', l4: 'tcp' }), { ctx: skbCtx() });
    bpf.close(guard);
    expect(metrics.expose()).toMatch(/^dnsseal_datapath_guard_drops_total\{reason="plain_protected"\} [1-9]/m);
  });

  test('teardown is refused with busy while a backend runs, then removes every pin', async () => {
    const dp = make();
    let err: unknown;
    try {
      await teardown(silentLogger, { pinRoot: ROOT });
    } catch (e) {
      err = e;
    }
    expect((err as DnssealError).code).toBe('busy');
    dp.close();
    const lines = await teardown(silentLogger, { pinRoot: ROOT });
    expect(lines).toContain('map dnsseal_dests4');
    expect(lines).toContain('map dnsseal_dests6');
    expect(existsSync(ROOT)).toBe(false);
    expect(await teardown(silentLogger, { pinRoot: ROOT })).toEqual([]);
  });
});
