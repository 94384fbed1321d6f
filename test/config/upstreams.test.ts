/**
 * `upstreams:` as server lists (plain, DoT, DoH) and `--upstream` that appends: what is read,
 * what is refused and where (file:line of the very server, or the flag), and the default taken
 * from every usable nameserver of resolv.conf.
 */
import { describe, expect, test } from 'bun:test';
import { checkConfig, problemText } from '../../src/config/check.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { pickResolvUpstream } from '../../src/config/resolv.ts';
import type { Config } from '../../src/config/types.ts';
import { deps, flags } from './fixtures.ts';

const load = (text: string, values: Map<string, string[]> = new Map(), resolv?: string): Config =>
  loadConfigText(text, 'c.yaml', values, resolv === undefined ? deps() : deps({}, resolv));

/** Every problem `check` finds, as `where: message` lines (without the key path check adds). */
function problems(text: string, values: Map<string, string[]> = new Map()): string[] {
  return checkConfig(new Map([['config', ['c.yaml']], ...values]), deps({ 'c.yaml': text })).errors.map((p) => problemText({ ...p, key: null }));
}

const dns = (address: string, port = 53) => ({ transport: 'dns' as const, address, port });
const servers = (c: Config, name = 'default') => c.upstreams.find((u) => u.name === name)?.servers;

describe('config/upstreams', () => {
  test('reads a list of plain, DoT and DoH servers in order when a name holds several', () => {
    const c = load('upstreams:\n  default: [192.0.2.1, "tls://9.9.9.9#dns.quad9.net", "https://1.1.1.1/dns-query#cloudflare-dns.com", "[2001:db8::1]:5353"]\n');
    expect(servers(c)).toEqual([
      dns('192.0.2.1'),
      { transport: 'tls', address: '9.9.9.9', port: 853, serverName: 'dns.quad9.net' },
      { transport: 'https', address: '1.1.1.1', port: 443, path: '/dns-query', serverName: 'cloudflare-dns.com' },
      dns('2001:db8::1', 5353),
    ]);
  });

  test.each([
    ['a scalar', 'upstreams:\n  lan: 192.168.1.1\n'],
    ['a one-item list', 'upstreams:\n  lan: [192.168.1.1]\n'],
    ['a mapping with servers', 'upstreams:\n  lan: {servers: 192.168.1.1}\n'],
    ['a mapping with the older address key', 'upstreams:\n  lan: {address: 192.168.1.1}\n'],
  ])('reads one server when the name is given as %s', (_what, text) => {
    expect(servers(load(text), 'lan')).toEqual([dns('192.168.1.1')]);
  });

  test('keeps the TSIG key with a server list when the mapping names one', () => {
    const c = load('tsig_keys:\n  fleet: {secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==}\nupstreams:\n  ps:\n    servers:\n      - "tls://10.0.0.5#ps.corp.example"\n      - 10.0.0.6\n    tsig_key: fleet\n');
    expect(c.upstreams.find((u) => u.name === 'ps')).toEqual({
      name: 'ps',
      servers: [{ transport: 'tls', address: '10.0.0.5', port: 853, serverName: 'ps.corp.example' }, dns('10.0.0.6')],
      tsigKey: 'fleet',
    });
  });

  test('replaces the file\'s list with the first flag for a name and appends the next ones', () => {
    const c = load('upstreams:\n  default: [192.0.2.1, 192.0.2.2]\n  lan: 192.168.1.1\n', flags(['upstream', 'default=192.0.2.9'], ['upstream', 'tls://9.9.9.9#dns.quad9.net'], ['upstream', 'corp=10.0.0.53']));
    expect(servers(c)).toEqual([dns('192.0.2.9'), { transport: 'tls', address: '9.9.9.9', port: 853, serverName: 'dns.quad9.net' }]);
    expect(servers(c, 'lan')).toEqual([dns('192.168.1.1')]);
    expect(servers(c, 'corp')).toEqual([dns('10.0.0.53')]);
  });

  test('keeps the file\'s TSIG key when a flag replaces the servers without tsig-key', () => {
    const c = load(
      'tsig_keys:\n  k: {secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==}\nupstreams:\n  default: 192.0.2.1\n  ps: {servers: 192.0.2.9, tsig_key: k}\n',
      flags(['upstream', 'ps=192.0.2.10'], ['upstream', 'ps=192.0.2.11']),
    );
    expect(c.upstreams.find((u) => u.name === 'ps')).toEqual({ name: 'ps', servers: [dns('192.0.2.10'), dns('192.0.2.11')], tsigKey: 'k' });
  });

  test('reads a DoH server with "=" in its path as a server of default when no name precedes it', () => {
    const c = load('', flags(['upstream', 'https://192.0.2.8/q=dns#doh.example']));
    expect(servers(c)).toEqual([{ transport: 'https', address: '192.0.2.8', port: 443, path: '/q=dns', serverName: 'doh.example' }]);
  });

  test.each([
    ['a host name', 'upstreams:\n  default:\n    - 192.0.2.1\n    - dns.example\n', ['c.yaml:4: upstream "default": server "dns.example": "dns.example" is not an IP address']],
    ['an unknown scheme', 'upstreams:\n  default:\n    - "quic://192.0.2.1"\n', ['c.yaml:3: upstream "default": server "quic://192.0.2.1": unknown scheme "quic://"']],
    ['a name without tls:// or https://', 'upstreams:\n  default: "192.0.2.1#dns.example"\n', ['c.yaml:2: upstream "default": server "192.0.2.1#dns.example": a name (#NAME) or a path needs tls:// or https://']],
    ['a path on tls://', 'upstreams:\n  default: "tls://192.0.2.1/x#dns.example"\n', ['c.yaml:2: upstream "default": server "tls://192.0.2.1/x#dns.example": tls:// takes no path']],
    ['an empty list', 'upstreams:\n  default: []\n', ['c.yaml:2: upstream "default" needs at least one server']],
    ['servers and address both', 'upstreams:\n  default:\n    servers: 192.0.2.1\n    address: 192.0.2.2\n', ['c.yaml:4: upstream "default": give servers or address']],
    ['an unknown key', 'upstreams:\n  default:\n    server: 192.0.2.1\n', ['c.yaml:3: unknown key "server" in upstreams.default; did you mean "servers"?']],
    ['a server listed twice', 'upstreams:\n  default:\n    - 192.0.2.1\n    - 192.0.2.2\n    - 192.0.2.1:53\n', ['c.yaml:5: upstream "default": server 192.0.2.1:53 is listed twice (also at c.yaml:3)']],
  ])('refuses %s at the line of the server', (_what, text, want) => {
    const got = problems(text);
    expect(got.length).toBe(want.length);
    want.forEach((w, i) => expect(got[i]).toStartWith(w));
  });

  test('reports every bad server of a list, each at its own line, and no unknown upstream for a rule naming it', () => {
    const got = problems(
      ['upstreams:', '  default: 192.0.2.53', '  lan:', '    - router.lan', '    - "tls://[::1]#"', 'channels:', '  hub: {kind: tunnel, gateway: 192.0.2.1}', 'tables:', '  default:', '    - {match: "*.lan", channel: hub, upstream: lan}', ''].join('\n'),
    );
    expect(got.map((p) => p.split(': ')[0])).toEqual(['c.yaml:4', 'c.yaml:5']);
  });

  test.each([
    ['::1:5353', '[::1]:5353', '[::1:5353]', 53],
    ['2001:db8::1:53', '[2001:db8::1]:53', '[2001:db8::1:53]', 53],
    ['tls://::1:853#dot.example', '[::1]:853', '[::1:853]', 853],
  ])('refuses the ambiguous bare IPv6 %s in the file and as a flag, saying how to write either reading', (text, withPort, asAddress, port) => {
    const want = `ambiguous: an IPv6 address with a port goes in brackets — write ${withPort} for port`;
    const inFile = problems(`upstreams:\n  default:\n    - 192.0.2.1\n    - "${text}"\n`);
    expect(inFile).toHaveLength(1);
    expect(inFile[0]).toStartWith(`c.yaml:4: upstream "default": server "${text}": ${want}`);
    expect(inFile[0]).toEndWith(`or ${asAddress} for the address ${asAddress.slice(1, -1)} (port ${port})`);
    expect(() => load('', flags(['upstream', text]))).toThrow(`--upstream: upstream "default": server "${text}": ${want}`);
  });

  test.each([
    ['[::1]:5353', dns('::1', 5353)],
    ['[::1:5353]', dns('::1:5353')],
    ['::1', dns('::1')],
    ['2001:4860:4860::8888', dns('2001:4860:4860::8888')],
    ['2620:fe::fe', dns('2620:fe::fe')],
  ])('reads the unambiguous IPv6 server %s as written', (text, want) => {
    expect(servers(load(`upstreams:\n  default: "${text}"\n`))).toEqual([want]);
  });

  test('refuses more than 31 servers for one name at the 32nd', () => {
    const list = Array.from({ length: 32 }, (_, i) => `    - 192.0.2.${i + 1}`).join('\n');
    expect(problems(`upstreams:\n  default:\n${list}\n`)).toEqual(['c.yaml:34: upstream "default" has 32 servers, at most 31']);
  });

  test('refuses more than 31 servers given by flags at the flag', () => {
    const many = Array.from({ length: 32 }, (_, i): [string, string] => ['upstream', `192.0.2.${i + 1}`]);
    expect(() => load('', flags(...many))).toThrow('--upstream: upstream "default" has 32 servers, at most 31');
  });

  test('refuses upstream_source with a DoH server and names the server and its line', () => {
    const got = problems('upstream_source: 192.0.2.7\nupstreams:\n  default:\n    - 192.0.2.1\n    - "https://192.0.2.2/dns-query#doh.example"\n');
    expect(got).toEqual([
      'c.yaml:1: upstream_source 192.0.2.7 cannot be used with the DNS-over-HTTPS server https://192.0.2.2:443/dns-query#doh.example of upstream "default" (c.yaml:5): HTTPS requests cannot choose their local address; use tls:// where the source address matters, or drop upstream_source',
    ]);
  });

  test('checks the family of upstream_source against each server of a list, DoT included', () => {
    const got = problems('upstream_source: 192.0.2.7\nupstreams:\n  default:\n    - 192.0.2.1\n    - "tls://[2001:db8::53]#dot.example"\n');
    expect(got).toHaveLength(1);
    expect(got[0]).toStartWith('c.yaml:1: upstream_source 192.0.2.7 is IPv4 but upstream "default" server tls://[2001:db8::53]:853#dot.example (c.yaml:5) is IPv6');
  });

  test('accepts upstream_source with plain and DoT servers of its family', () => {
    expect(servers(load('upstream_source: 192.0.2.7\nupstreams:\n  default: [192.0.2.1, "tls://192.0.2.2#dot.example"]\n'))).toHaveLength(2);
  });
});

describe('config/resolv', () => {
  test('takes every usable nameserver in order when resolv.conf names several', () => {
    const c = load('', new Map(), 'search lan\nnameserver 192.0.2.1\nnameserver 127.0.0.53\nnameserver 2001:db8::1\nnameserver 192.0.2.1\nnameserver 192.0.2.3\n');
    expect(servers(c)).toEqual([dns('192.0.2.1'), dns('2001:db8::1'), dns('192.0.2.3')]);
  });

  test('skips dnsseal\'s own listen addresses and uses the next file when the first has nothing usable', () => {
    const pick = pickResolvUpstream(['nameserver 127.0.0.53\nnameserver 127.0.0.1\n', 'nameserver 10.0.0.1\nnameserver 10.0.0.2\n'], ['127.0.0.1:53']);
    expect(pick.upstreams).toEqual([
      { address: '10.0.0.1', port: 53 },
      { address: '10.0.0.2', port: 53 },
    ]);
    expect(pick.skipped).toEqual(['127.0.0.53:53', '127.0.0.1:53']);
  });

  test('takes at most 31 nameservers when resolv.conf names more', () => {
    const text = Array.from({ length: 40 }, (_, i) => `nameserver 10.0.0.${i + 1}`).join('\n');
    expect(pickResolvUpstream([text], []).upstreams).toHaveLength(31);
  });
});

describe('config/upstreams loops', () => {
  test.each([
    ['listen: [127.0.0.1:5300]\nupstreams:\n  default: 127.0.0.1:5300\n', 'c.yaml:3: upstream "default": server 127.0.0.1:5300 is dnsseal itself (listen 127.0.0.1:5300)'],
    ['listen: [0.0.0.0:5300]\nallow_clients: [10.0.0.0/8]\nupstreams:\n  lan: [192.0.2.1, 127.0.0.2:5300]\n', 'c.yaml:4: upstream "lan": server 127.0.0.2:5300 is dnsseal itself (listen 0.0.0.0:5300)'],
    ['listen: ["[::]:53"]\nallow_clients: [10.0.0.0/8]\nupstreams:\n  default: "::1"\n', 'c.yaml:4: upstream "default": server [::1]:53 is dnsseal itself (listen [::]:53)'],
  ])('refuses an upstream server that is dnsseal\'s own listen address (%#)', (text, message) => {
    expect(problems(text).some((p) => p.startsWith(message))).toBe(true);
  });

  test.each([
    'listen: [127.0.0.1:5300]\nupstreams:\n  default: 127.0.0.1:53\n',
    'listen: [127.0.0.1:5300]\nupstreams:\n  default: "tls://127.0.0.1:5300#x"\n',
    'listen: [10.0.0.1:53]\nallow_clients: [10.0.0.0/8]\nupstreams:\n  default: 127.0.0.1:53\n',
  ])('takes an upstream on another port or address than its own (%#)', (text) => {
    expect(problems(text)).toEqual([]);
  });
});
