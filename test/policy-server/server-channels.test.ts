/**
 * ServerChannels (#5): server-named channels become local specs with ids derived from the
 * channel itself (so a restarted daemon gives an adopted entry's id the same meaning), and
 * `ready` runs the daemon's set-up (strongSwan load) for server channels only.
 */
import { describe, expect, test } from 'bun:test';
import type { PolicyChannel } from '../../src/dns/policy-option.ts';
import { SERVER_CHANNEL_BASE, SERVER_CHANNEL_SPAN, ServerChannels, serverChannelId, serverChannelKey } from '../../src/policy-server/proxy-side.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';

const HUB_A: PolicyChannel = { name: 'hub-a', kind: 'tunnel', identity: 'hub-a.nec.example', esp: 'aes256gcm16', gateway: '192.0.2.1' };
const PEER_B: PolicyChannel = { name: 'peer-b', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' };

describe('policy-server/proxy-side ServerChannels', () => {
  // Golden values computed outside this code base (FNV-1a 32 over the UTF-8 canonical text):
  //   ["hub-a","tunnel","hub-a.nec.example","aes256gcm16","192.0.2.1"] → 235669232 → 41736
  //   ["peer-b","peer","%name","chacha20poly1305",null]                 → 2029229790 → 35015
  test.each([
    ['hub-a', HUB_A, '["hub-a","tunnel","hub-a.nec.example","aes256gcm16","192.0.2.1"]', 41736],
    ['peer-b', PEER_B, '["peer-b","peer","%name","chacha20poly1305",null]', 35015],
  ] as [string, PolicyChannel, string, number][])('id is 32768 + fnv1a32(canonical spec) mod 32767 when the channel is %s', (_n, ch, key, id) => {
    expect(serverChannelKey(ch)).toBe(key);
    const spec = new ServerChannels().resolve(ch);
    expect(spec.id).toBe(id);
    expect(spec.mark).toBe(channelMark(id));
  });

  test('ids do not depend on the order channels are first seen when the daemon restarts', () => {
    const first = new ServerChannels();
    const a1 = first.resolve(HUB_A);
    const b1 = first.resolve(PEER_B);
    const restarted = new ServerChannels();
    const b2 = restarted.resolve(PEER_B);
    const a2 = restarted.resolve(HUB_A);
    expect([a2.id, b2.id]).toEqual([a1.id, b1.id]);
    expect(a1.id).not.toBe(b1.id);
  });

  test('a channel that differs in any field gets its own id when the server changes it', () => {
    const sc = new ServerChannels();
    const ids = new Set(
      [HUB_A, { ...HUB_A, gateway: '192.0.2.2' }, { ...HUB_A, esp: 'chacha20poly1305' }, { ...HUB_A, identity: 'x' }, { ...HUB_A, name: 'hub-b' }].map(
        (c) => sc.resolve(c).id,
      ),
    );
    expect(ids.size).toBe(5);
    expect(sc.resolve(HUB_A).id).toBe(41736);
  });

  test('a collision probes upward when the hashed id is taken', () => {
    const key = serverChannelKey(HUB_A);
    expect(serverChannelId(key, () => false)).toBe(41736);
    expect(serverChannelId(key, (id) => id === 41736)).toBe(41737);
    expect(serverChannelId(key, (id) => id === 41736 || id === 41737)).toBe(41738);
  });

  test('probing wraps inside the range when it reaches the top', () => {
    const top = SERVER_CHANNEL_BASE + SERVER_CHANNEL_SPAN - 1; // 65534: the mark keeps 16 bits
    // Everything from the hashed id up to the top is taken: the next free is the bottom.
    expect(serverChannelId(serverChannelKey(HUB_A), (id) => id >= 41736 && id <= top)).toBe(SERVER_CHANNEL_BASE);
    expect(serverChannelId('x', () => true)).toBeNull();
  });

  test('ids stay within 32768..65534 when many channels are seen', () => {
    const sc = new ServerChannels();
    const ids = Array.from({ length: 500 }, (_, i) => sc.resolve({ ...PEER_B, name: `p${i}` }).id);
    expect(new Set(ids).size).toBe(500);
    for (const id of ids) {
      expect(id).toBeGreaterThanOrEqual(32768);
      expect(id).toBeLessThanOrEqual(65534);
    }
  });

  test('ready runs prepare for a server channel and resolves at once for a local one', async () => {
    const prepared: string[] = [];
    const sc = new ServerChannels(undefined, async (spec) => void prepared.push(spec.name));
    const spec = sc.resolve(HUB_A);
    await sc.ready(spec);
    const local: ChannelSpec = { ...spec, name: 'hub-a', id: 1, mark: channelMark(1) };
    await sc.ready(local);
    expect(prepared).toEqual(['server:hub-a']);
  });

  test('ready rejects when prepare fails, and tries again on the next call', async () => {
    let fail = true;
    const sc = new ServerChannels(undefined, async () => {
      if (fail) throw new Error('ipsec: load-conn failed');
    });
    const spec = sc.resolve(HUB_A);
    await expect(sc.ready(spec)).rejects.toThrow('ipsec: load-conn failed');
    fail = false;
    await sc.ready(spec);
  });
});
