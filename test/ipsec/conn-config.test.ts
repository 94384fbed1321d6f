import { describe, expect, test } from 'bun:test';
import { markText, peerConn, peerConnName, peerIdentity, tunnelConn, tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';

const hub: ChannelSpec = { name: 'hub', id: 1, mark: channelMark(1), protocol: 'ipsec', kind: 'tunnel', gateway: '203.0.113.1', identity: 'hub.test', esp: 'aes256gcm16' };
const partner: ChannelSpec = { name: 'partner', id: 2, mark: channelMark(2), protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' };

describe('ipsec/conn-config', () => {
  test('marks the tunnel child with the channel mark and selects the LAN when in gateway mode', () => {
    expect(tunnelConn(hub, { mode: 'gateway', lan: ['10.1.0.0/24', 'fd00:1::/64'], localId: 'router.test' })).toEqual({
      version: '2',
      local_addrs: ['%any'],
      remote_addrs: ['203.0.113.1'],
      proposals: ['default'],
      send_cert: 'always',
      local: { auth: 'pubkey', id: 'router.test' },
      remote: { auth: 'pubkey', id: 'hub.test' },
      dpd_delay: '30s',
      children: {
        'dnsseal-tunnel-hub': {
          mode: 'tunnel',
          local_ts: ['10.1.0.0/24', 'fd00:1::/64'],
          remote_ts: ['0.0.0.0/0', '::/0'],
          esp_proposals: ['aes256gcm16'],
          mark_in: '0x5e510001/0xffffffff',
          mark_out: '0x5e510001/0xffffffff',
          set_mark_in: '0x5e510001/0xffffffff',
          set_mark_out: '0x5e510000/0xffffffff',
          dpd_action: 'trap',
          close_action: 'trap',
        },
      },
    });
  });

  test('selects this host as local traffic when in host mode', () => {
    const c = tunnelConn(hub, { mode: 'host', lan: ['10.1.0.0/24'] }) as any;
    expect(c.children['dnsseal-tunnel-hub'].local_ts).toEqual(['dynamic']);
    expect(c.local).toEqual({ auth: 'pubkey' });
  });

  test.each<[string, 'host' | 'gateway', string, string, string[], string[]]>([
    ['transport between the hosts', 'host', '192.0.2.2', 'transport', ['dynamic'], ['dynamic']],
    ['a tunnel to the peer address', 'gateway', '192.0.2.2', 'tunnel', ['10.1.0.0/24'], ['192.0.2.2/32']],
    ['a tunnel to the peer IPv6 address', 'gateway', '2001:db8::2', 'tunnel', ['10.1.0.0/24'], ['2001:db8::2/128']],
  ])('builds %s when in %s mode', (_what, mode, addr, childMode, lts, rts) => {
    const c = peerConn(partner, addr, 'peer.partner.test', { mode, lan: ['10.1.0.0/24'] }) as any;
    const child = c.children[peerConnName(partner, addr)];
    expect(c.remote_addrs).toEqual([addr]);
    expect(c.remote).toEqual({ auth: 'pubkey', id: 'peer.partner.test' });
    expect(c.keyingtries).toBe('1');
    expect(child.mode).toBe(childMode);
    expect(child.local_ts).toEqual(lts);
    expect(child.remote_ts).toEqual(rts);
    expect(child.esp_proposals).toEqual(['chacha20poly1305']);
    expect(child.mark_out).toBe('0x5e510002/0xffffffff');
  });

  test.each([
    ['%name', 'peer.partner.test', 'peer.partner.test'],
    ['partner-gw.test', 'peer.partner.test', 'partner-gw.test'],
  ])('resolves configured identity %s for query %s to %s when building a peer conn', (identity, name, want) => {
    expect(peerIdentity({ ...partner, identity }, name)).toBe(want);
  });

  test('prefixes every connection name with dnsseal- when naming conns', () => {
    expect(tunnelConnName(hub)).toBe('dnsseal-tunnel-hub');
    expect(peerConnName(partner, '2001:db8::2')).toBe('dnsseal-peer-partner-2001:db8::2');
  });

  test('pads the mark to 8 hex digits when the channel id is small', () => {
    expect(markText(channelMark(0xabc))).toBe('0x5e510abc/0xffffffff');
  });
});
