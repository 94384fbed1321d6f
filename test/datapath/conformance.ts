/**
 * The shared case suite every Datapath backend runs (none, fake, and the eBPF backend against
 * a real kernel map), so the fakes cannot drift from the real thing.
 *
 *   datapathConformance('ebpf', () => createEbpfDatapath(...), { capacity: 64 });
 *
 * `make` must return a backend over an EMPTY destination map; each test closes it afterwards.
 * `datapathStateConformance` (below) is the second block: the expiry and flags adoption needs.
 * `capacity` is the map's max_entries: the map-full cases run only when it is given (keep it
 * small for a real map, they fill it).
 */
import { describe, expect, test } from 'bun:test';
import type { Datapath, DestKey, DestValue } from '../../src/datapath/datapath.ts';
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../../src/datapath/datapath.ts';
import { DnssealError } from '../../src/util/errors.ts';

export interface ConformanceOptions {
  capacity?: number;
  /** "Now" in the backend's Clock.monoMs() base (expiries are written relative to it); default 1,000,000. */
  nowMs?: () => number;
}

const V4: DestKey = { group: 0, addr: '192.0.2.10' };
const V6: DestKey = { group: 0, addr: '2001:db8::10' };
const VAL: DestValue = { channelId: 1, mark: 0x5e510001, flags: 0 };

function sortKeys(keys: DestKey[]): string[] {
  return keys.map((k) => `${k.group}/${k.addr}`).sort();
}

/** Runs `fn` on a fresh data path from `make` and closes it afterwards, whatever happens. */
async function withDatapath(make: () => Datapath | Promise<Datapath>, fn: (dp: Datapath) => void | Promise<void>): Promise<void> {
  const dp = await make();
  try {
    await fn(dp);
  } finally {
    dp.close();
  }
}

export function datapathConformance(
  name: string,
  make: () => Datapath | Promise<Datapath>,
  opts: ConformanceOptions = {},
): void {
  const withDp = (fn: (dp: Datapath) => void | Promise<void>) => withDatapath(make, fn);

  describe(`datapath conformance: ${name}`, () => {
    test('list is empty when the map is new', () =>
      withDp((dp) => {
        expect(dp.list()).toEqual([]);
      }));

    test.each([
      ['IPv4', V4],
      ['IPv6', V6],
      ['IPv4-mapped IPv6 (canonical hex form)', { group: 0, addr: '::ffff:c000:201' }],
      ['nonzero group', { group: 502, addr: '198.51.100.7' }],
    ] as [string, DestKey][])('upsert then list returns the entry when the key is %s', (_label, key) =>
      withDp((dp) => {
        dp.upsert(key, VAL);
        const rows = dp.list();
        expect(rows).toHaveLength(1);
        expect(rows[0]!.key).toEqual(key);
        expect(rows[0]!.value).toEqual(VAL);
      }));

    test('IPv4 and IPv6 keys are separate entries when both are inserted', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        dp.upsert(V6, { ...VAL, channelId: 2, mark: 0x5e510002 });
        expect(sortKeys(dp.list().map((e) => e.key))).toEqual(sortKeys([V4, V6]));
        const byAddr = new Map(dp.list().map((e) => [e.key.addr, e.value.channelId]));
        expect(byAddr.get(V4.addr)).toBe(1);
        expect(byAddr.get(V6.addr)).toBe(2);
      }));

    test('one address in two groups gives two entries when inserted for both', () =>
      withDp((dp) => {
        const a = { group: 1, addr: '192.0.2.20' };
        const b = { group: 2, addr: '192.0.2.20' };
        dp.upsert(a, VAL);
        dp.upsert(b, { ...VAL, channelId: 3, mark: 0x5e510003 });
        expect(sortKeys(dp.list().map((e) => e.key))).toEqual(sortKeys([a, b]));
        dp.remove(a);
        const rows = dp.list();
        expect(rows.map((e) => e.key)).toEqual([b]);
        expect(rows[0]!.value.channelId).toBe(3);
      }));

    test('upsert overwrites the value when the key exists', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        const next = { channelId: 7, mark: 0x5e510007, flags: DEST_F_STATIC };
        dp.upsert(V4, next);
        const rows = dp.list();
        expect(rows).toHaveLength(1);
        expect(rows[0]!.value).toEqual(next);
      }));

    test.each([
      ['retired', DEST_F_RETIRED],
      ['blocked', DEST_F_BLOCKED],
      ['retired and blocked', DEST_F_RETIRED | DEST_F_BLOCKED],
    ] as [string, number][])('expiry and flags round-trip when the entry is %s', (_label, flags) =>
      withDp((dp) => {
        const now = opts.nowMs?.() ?? 1_000_000;
        const v4 = { channelId: 3, mark: 0x5e510003, flags, expiresMs: now + 300_000 };
        const v6 = { channelId: 4, mark: 0x5e510004, flags, expiresMs: now - 5_000 }; // already run out
        dp.upsert(V4, v4);
        dp.upsert(V6, v6);
        const byAddr = new Map(dp.list().map((e) => [e.key.addr, e.value]));
        expect(byAddr.get(V4.addr)).toEqual(v4);
        expect(byAddr.get(V6.addr)).toEqual(v6);
      }));

    test('upsert replaces expiry and flags when the key exists', () =>
      withDp((dp) => {
        const now = opts.nowMs?.() ?? 1_000_000;
        dp.upsert(V4, { ...VAL, flags: DEST_F_RETIRED, expiresMs: now + 1_000 });
        dp.upsert(V4, { ...VAL, expiresMs: now + 600_000 }); // a new answer brings it back
        expect(dp.list()[0]!.value).toEqual({ ...VAL, expiresMs: now + 600_000 });
        dp.upsert(V4, VAL); // no expiry (static)
        expect(dp.list()[0]!.value.expiresMs).toBeUndefined();
      }));

    test('remove deletes only that key when several exist', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        dp.upsert(V6, VAL);
        dp.remove(V4);
        expect(dp.list().map((e) => e.key)).toEqual([V6]);
      }));

    test('remove is not an error when the key is absent', () =>
      withDp((dp) => {
        dp.remove(V4);
        dp.upsert(V4, VAL);
        dp.remove(V4);
        dp.remove(V4);
        expect(dp.list()).toEqual([]);
      }));

    test('lastSeen is undefined when no packet was ever seen', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        expect(dp.lastSeen(V4)).toBeUndefined();
        expect(dp.list()[0]!.lastSeenMs).toBeUndefined();
      }));

    test('lastSeen is undefined when the key is absent', () =>
      withDp((dp) => {
        expect(dp.lastSeen({ group: 9, addr: '203.0.113.99' })).toBeUndefined();
      }));

    test('list returns copies when the caller mutates them', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        const rows = dp.list();
        rows[0]!.value.channelId = 99;
        rows[0]!.key.group = 99;
        expect(dp.list()[0]!.value.channelId).toBe(1);
        expect(dp.list()[0]!.key.group).toBe(0);
      }));

    test('setChannels takes rows with and without gateway/peer when a channel is added at runtime', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        dp.setChannels([{ id: 1, mark: 0x5e510001, up: false }]);
        // A policy-server channel first seen at runtime names its kind and gateway.
        dp.setChannels([
          { id: 1, mark: 0x5e510001, up: false },
          { id: 40000, mark: 0x5e519c40, up: false, peer: true },
          { id: 40001, mark: 0x5e519c41, up: true, gateway: '198.51.100.1', peer: false },
        ]);
        dp.setChannels([
          { id: 1, mark: 0x5e510001, up: true },
          { id: 40000, mark: 0x5e519c40, up: true },
        ]);
        expect(dp.list().map((e) => e.value)).toEqual([VAL]); // the channel table never touches entries
      }));

    const cap = opts.capacity;
    if (cap === undefined) {
      test.skip('map_full cases (no capacity given for this backend)', () => {});
    } else {
      const fill = (dp: Datapath): DestKey[] => {
        const keys: DestKey[] = [];
        for (let i = 0; i < cap; i++) {
          const key = { group: 7, addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` };
          dp.upsert(key, VAL);
          keys.push(key);
        }
        return keys;
      };

      test('upsert of a new key throws map_full and evicts nothing when the map is full', () =>
        withDp((dp) => {
          const keys = fill(dp);
          let caught: unknown;
          try {
            dp.upsert({ group: 7, addr: '203.0.113.1' }, VAL);
          } catch (err) {
            caught = err;
          }
          expect(caught).toBeInstanceOf(DnssealError);
          expect((caught as DnssealError).code).toBe('map_full');
          expect(sortKeys(dp.list().map((e) => e.key))).toEqual(sortKeys(keys));
        }));

      test('upsert of an existing key succeeds when the map is full', () =>
        withDp((dp) => {
          const keys = fill(dp);
          const next = { channelId: 2, mark: 0x5e510002, flags: 0 };
          dp.upsert(keys[0]!, next);
          expect(dp.list().find((e) => e.key.addr === keys[0]!.addr)!.value).toEqual(next);
          expect(dp.list()).toHaveLength(cap);
        }));

      test('a new key fits again when one was removed from a full map', () =>
        withDp((dp) => {
          const keys = fill(dp);
          dp.remove(keys[0]!);
          dp.upsert({ group: 7, addr: '203.0.113.1' }, VAL);
          expect(dp.list()).toHaveLength(cap);
        }));
    }
  });
}

export interface StateConformanceOptions {
  /** The backend's Clock.monoMs() now; expiries are written relative to it (default 1,000,000). */
  nowMs?: () => number;
}

/**
 * What a restarted daemon adopts from the map (issue #11 items 3 and 4): the entry's expiry
 * (`expiresMs`, Clock.monoMs() base) and its static / retired / blocked flags must read back as
 * written. A separate block so a backend can run it once it keeps them:
 *
 *   datapathStateConformance('ebpf', () => makeDp(ROOT, { capacity: 64 }), { nowMs: () => clock.monoMs() });
 *
 * An expiry may read back up to 1 ms off (a backend may keep it in another time base).
 */
export function datapathStateConformance(
  name: string,
  make: () => Datapath | Promise<Datapath>,
  opts: StateConformanceOptions = {},
): void {
  const now = opts.nowMs ?? (() => 1_000_000);
  const withDp = (fn: (dp: Datapath) => void | Promise<void>) => withDatapath(make, fn);
  const valueOf = (dp: Datapath, key: DestKey): DestValue | undefined =>
    dp.list().find((e) => e.key.group === key.group && e.key.addr === key.addr)?.value;
  const expectExpiry = (got: number | undefined, want: number) => {
    expect(got).toBeDefined();
    expect(Math.abs(got! - want)).toBeLessThanOrEqual(1);
  };

  describe(`datapath state conformance: ${name}`, () => {
    test.each([
      ['IPv4', V4],
      ['IPv6', V6],
    ] as [string, DestKey][])('expiresMs reads back as written when the key is %s', (_label, key) =>
      withDp((dp) => {
        const at = now() + 3_600_000;
        dp.upsert(key, { ...VAL, expiresMs: at });
        expectExpiry(valueOf(dp, key)!.expiresMs, at);
      }));

    test('an expiry in the past reads back as written when the hold already ran out', () =>
      withDp((dp) => {
        const at = now() - 60_000;
        dp.upsert(V4, { ...VAL, expiresMs: at });
        expectExpiry(valueOf(dp, V4)!.expiresMs, at);
      }));

    test('no expiry reads back as none (0 or absent) when the value has none', () =>
      withDp((dp) => {
        dp.upsert(V4, VAL);
        dp.upsert(V6, { ...VAL, expiresMs: 0 });
        expect(valueOf(dp, V4)!.expiresMs ?? 0).toBe(0);
        expect(valueOf(dp, V6)!.expiresMs ?? 0).toBe(0);
      }));

    test.each([
      ['the retired flag', DEST_F_RETIRED],
      ['the blocked flag', DEST_F_BLOCKED],
      ['the static flag', DEST_F_STATIC],
      ['the static and blocked flags together', DEST_F_STATIC | DEST_F_BLOCKED],
    ] as [string, number][])('%s reads back as written when an entry carries it', (_label, flags) =>
      withDp((dp) => {
        dp.upsert(V4, { ...VAL, flags, expiresMs: now() + 1000 });
        dp.upsert(V6, { ...VAL, flags });
        expect(valueOf(dp, V4)!.flags).toBe(flags);
        expect(valueOf(dp, V6)!.flags).toBe(flags);
      }));

    test('an overwrite moves the expiry and clears the retired flag when an entry comes back', () =>
      withDp((dp) => {
        dp.upsert(V4, { ...VAL, flags: DEST_F_RETIRED, expiresMs: now() - 1000 });
        const at = now() + 300_000;
        dp.upsert(V4, { ...VAL, flags: 0, expiresMs: at });
        const v = valueOf(dp, V4)!;
        expect([v.channelId, v.mark, v.flags]).toEqual([VAL.channelId, VAL.mark, 0]);
        expectExpiry(v.expiresMs, at);
        expect(dp.list()).toHaveLength(1);
      }));

    test('a retired entry keeps its channel and mark when it is written', () =>
      withDp((dp) => {
        dp.upsert(V6, { channelId: 2, mark: 0x5e510002, flags: DEST_F_RETIRED, expiresMs: now() });
        expect(valueOf(dp, V6)).toMatchObject({ channelId: 2, mark: 0x5e510002, flags: DEST_F_RETIRED });
      }));
  });
}
