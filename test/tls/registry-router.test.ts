import { describe, expect, test } from 'bun:test';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { RecordedDestinations } from '../../src/tls/recorded-destinations.ts';
import { RegistryRouter, TlsChannels, canonicalAddr } from '../../src/tls/registry-router.ts';
import type { TlsCredentials } from '../../src/tls/types.ts';

const creds: TlsCredentials = { certPem: 'C', keyPem: 'K', caPem: 'A', names: ['router.corp.test'] };
const specs: ChannelSpec[] = [
  { name: 'partner', id: 1, mark: 1, protocol: 'tls', kind: 'peer', identity: '%name', esp: '', tlsPort: 9853 },
  { name: 'hub', id: 2, mark: 2, protocol: 'tls', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub.corp.test', esp: '', tlsPort: 9443 },
  { name: 'esp', id: 3, mark: 3, protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'aes256gcm16' },
];
const channels = TlsChannels.build(specs, { partner: creds, hub: creds });

/** A registry stand-in: entries by `group/addr`. */
function entries(map: Record<string, { channel: string; names: string[] }>) {
  const asked: string[] = [];
  return {
    asked,
    get(group: number, addr: string) {
      asked.push(`${group}/${addr}`);
      return map[`${group}/${addr}`];
    },
  };
}

const conn = (peer = '127.0.0.1') => ({ peer: { addr: peer, port: 40000 }, local: { addr: '127.0.0.1', port: 9854 } });

describe('tls/registry-router', () => {
  test('builds the relay channels from the tls specs only', () => {
    expect([...channels.byName.keys()]).toEqual(['partner', 'hub']);
    expect(channels.byName.get('hub')).toEqual({ name: 'hub', kind: 'tunnel', gateway: '192.0.2.1', port: 9443, identity: 'hub.corp.test', credentials: creds });
    expect(() => TlsChannels.build(specs, { partner: creds })).toThrow('tls channel hub has no credentials');
  });

  test('routes an address held by a tls channel with the first name that holds it', () => {
    const reg = entries({ '0/198.51.100.7': { channel: 'partner', names: ['www.partner.test', 'edge.partner.test'] } });
    const r = new RegistryRouter(reg, () => 0, () => channels);
    expect(r.route({ addr: '198.51.100.7', port: 443 }, conn())).toEqual({ channel: channels.byName.get('partner')!, name: 'www.partner.test' });
  });

  test.each([
    ['an address the registry does not hold', {}],
    ['an address held by an IPsec channel', { '0/198.51.100.7': { channel: 'esp', names: ['x.test'] } }],
    ['an address held by a channel gone in a reload', { '0/198.51.100.7': { channel: 'old', names: ['x.test'] } }],
  ])('does not route %s', (_what, map) => {
    expect(new RegistryRouter(entries(map), () => 0, () => channels).route({ addr: '198.51.100.7', port: 443 }, conn())).toBeNull();
  });

  test('gives no name for an entry adopted after a restart', () => {
    const reg = entries({ '0/198.51.100.7': { channel: 'partner', names: ['(adopted)'] } });
    expect(new RegistryRouter(reg, () => 0, () => channels).route({ addr: '198.51.100.7', port: 443 }, conn())).toEqual({ channel: channels.byName.get('partner')! });
  });

  test('looks the address up in the connecting client\'s group with canonical texts when the socket is dual-stack', () => {
    const reg = entries({ '502/2001:db8::7': { channel: 'hub', names: ['app.corp.test'] } });
    const groups: string[] = [];
    const r = new RegistryRouter(reg, (c) => (groups.push(c), 502), () => channels);
    expect(r.route({ addr: '2001:DB8:0:0::7', port: 443 }, conn('::ffff:10.1.0.5'))?.name).toBe('app.corp.test');
    expect(groups).toEqual(['10.1.0.5']);
    expect(reg.asked).toEqual(['502/2001:db8::7']);
  });

  test.each([
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['not-an-address', null],
  ])('canonicalises %s to %s', (text, want) => {
    expect(canonicalAddr(text)).toBe(want);
  });
});

describe('tls/recorded-destinations', () => {
  const c = (addr: string, port: number) => ({ peer: { addr, port }, local: { addr: '127.0.0.1', port: 9854 } });

  test('hands a recorded destination out once when the connection from that source arrives', () => {
    const t = new RecordedDestinations();
    t.record({ addr: '127.0.0.1', port: 40001 }, { addr: '198.51.100.7', port: 443 });
    expect(t.lookup(c('127.0.0.1', 40002))).toBeNull();
    expect(t.lookup(c('::ffff:127.0.0.1', 40001))).toEqual({ addr: '198.51.100.7', port: 443 });
    expect(t.lookup(c('127.0.0.1', 40001))).toBeNull();
  });

  test('forgets a record that was not used in time', () => {
    let now = 0;
    const t = new RecordedDestinations(() => now, 1000);
    t.record({ addr: '127.0.0.1', port: 40001 }, { addr: '198.51.100.7', port: 443 });
    now = 1500;
    expect(t.lookup(c('127.0.0.1', 40001))).toBeNull();
    t.record({ addr: '127.0.0.1', port: 40002 }, { addr: '198.51.100.7', port: 443 });
    now = 3000;
    t.record({ addr: '127.0.0.1', port: 40003 }, { addr: '198.51.100.7', port: 443 });
    expect(t.size).toBe(1);
  });
});
