import { describe, expect, test } from 'bun:test';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { datapathConformance, datapathStateConformance } from './conformance.ts';

datapathConformance('fake', () => new FakeDatapath({ capacity: 16 }), { capacity: 16 });
datapathStateConformance('fake', () => new FakeDatapath({ capacity: 16 }));

const KEY = { group: 0, addr: '192.0.2.1' };
const VAL = { channelId: 1, mark: 0x5e510001, flags: 0 };

describe('datapath/fake', () => {
  test('touch stamps lastSeen with the clock when no time is given', () => {
    const clock = new FakeClock();
    const dp = new FakeDatapath({ clock });
    dp.upsert(KEY, VAL);
    dp.touch(KEY);
    expect(dp.lastSeen(KEY)).toBe(clock.monoMs());
    dp.touch(KEY, 42);
    expect(dp.lastSeen(KEY)).toBe(42);
  });

  test('touch does nothing when the key is absent', () => {
    const dp = new FakeDatapath();
    dp.touch(KEY, 5);
    expect(dp.list()).toEqual([]);
    expect(dp.lastSeen(KEY)).toBeUndefined();
  });

  test('overwrite keeps lastSeen when the key was touched', () => {
    const dp = new FakeDatapath();
    dp.upsert(KEY, VAL);
    dp.touch(KEY, 5);
    dp.upsert(KEY, { ...VAL, channelId: 2 });
    expect(dp.lastSeen(KEY)).toBe(5);
  });

  test('failNext throws once when set', () => {
    const dp = new FakeDatapath();
    dp.failNext = new DnssealError('datapath', 'kernel', 'bpf(MAP_UPDATE_ELEM): EPERM');
    expect(() => dp.upsert(KEY, VAL)).toThrow('EPERM');
    dp.upsert(KEY, VAL);
    expect(dp.list()).toHaveLength(1);
  });
});
