/**
 * Channel ids across reloads: a channel keeps its running id (and mark) by name whatever its
 * place in the file; a new one gets an id no channel of this daemon had, so it never inherits
 * the marks of a removed channel's retired entries.
 */
import { describe, expect, test } from 'bun:test';
import { ChannelIds } from '../../src/daemon/channel-ids.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';

const ch = (name: string, id: number): ChannelSpec => ({ name, id, mark: channelMark(id), protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: '192.0.2.1', esp: 'aes256gcm16' });
const ids = (chs: ChannelSpec[]) => chs.map((c) => [c.name, c.id, c.mark]);

describe('daemon/channel-ids', () => {
  test('keeps running ids by name when the loader renumbered the channels', () => {
    const running = [ch('old', 1), ch('hub', 2), ch('lab', 3)];
    const keep = new ChannelIds(running);
    // the file dropped `old`: the loader numbered hub 1 and lab 2
    expect(ids(keep.stable(running, [ch('hub', 1), ch('lab', 2)]))).toEqual([
      ['hub', 2, channelMark(2)],
      ['lab', 3, channelMark(3)],
    ]);
  });

  test('gives a new channel an id never used, not the id of one removed before', () => {
    const start = [ch('old', 1), ch('hub', 2)];
    const keep = new ChannelIds(start);
    const second = keep.stable(start, [ch('hub', 1)]);
    expect(ids(second)).toEqual([['hub', 2, channelMark(2)]]);
    const third = keep.stable(second, [ch('hub', 1), ch('new', 2)]);
    expect(ids(third)).toEqual([
      ['hub', 2, channelMark(2)],
      ['new', 3, channelMark(3)],
    ]);
  });

  test('returns the same objects when nothing was renumbered', () => {
    const running = [ch('hub', 1)];
    const next = [ch('hub', 1)];
    expect(new ChannelIds(running).stable(running, next)[0]).toBe(next[0]!);
  });
});
