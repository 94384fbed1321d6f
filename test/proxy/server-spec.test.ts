import { describe, expect, test } from 'bun:test';
import { formatServerSpec, parseServerSpec, type ServerSpec } from '../../src/proxy/server-spec.ts';
import { DnssealError } from '../../src/util/errors.ts';

describe('proxy/server-spec', () => {
  test.each<[string, ServerSpec]>([
    ['192.0.2.1', { transport: 'dns', address: '192.0.2.1', port: 53 }],
    ['192.0.2.1:5353', { transport: 'dns', address: '192.0.2.1', port: 5353 }],
    ['2001:db8::1', { transport: 'dns', address: '2001:db8::1', port: 53 }],
    ['[2001:db8::1]:5353', { transport: 'dns', address: '2001:db8::1', port: 5353 }],
    ['tls://192.0.2.1#dns.example', { transport: 'tls', address: '192.0.2.1', port: 853, serverName: 'dns.example' }],
    ['tls://192.0.2.1:8853#Dns.Example.', { transport: 'tls', address: '192.0.2.1', port: 8853, serverName: 'dns.example' }],
    ['tls://[2001:db8::1]#dns.example', { transport: 'tls', address: '2001:db8::1', port: 853, serverName: 'dns.example' }],
    ['tls://1.1.1.1', { transport: 'tls', address: '1.1.1.1', port: 853, serverName: '1.1.1.1' }],
    ['https://192.0.2.1/dns-query#dns.example', { transport: 'https', address: '192.0.2.1', port: 443, path: '/dns-query', serverName: 'dns.example' }],
    ['https://192.0.2.1#dns.example', { transport: 'https', address: '192.0.2.1', port: 443, path: '/dns-query', serverName: 'dns.example' }],
    ['HTTPS://192.0.2.1:8443/resolve#dns.example', { transport: 'https', address: '192.0.2.1', port: 8443, path: '/resolve', serverName: 'dns.example' }],
    ['https://[2001:db8::1]:8443/dns-query#dns.example', { transport: 'https', address: '2001:db8::1', port: 8443, path: '/dns-query', serverName: 'dns.example' }],
  ])('parses %s when it is well formed', (text, spec) => {
    const got = parseServerSpec(text);
    expect(got).toEqual(spec);
    expect(parseServerSpec(formatServerSpec(got))).toEqual(got);
  });

  test.each<[string, string]>([
    ['', 'empty'],
    ['dns.example', 'not an IP address'],
    ['tls://dns.example#dns.example', 'write the address, and the name after #'],
    ['https://dns.google/dns-query', 'not an IP address'],
    ['quic://192.0.2.1#dns.example', 'unknown scheme'],
    ['192.0.2.1#dns.example', 'needs tls:// or https://'],
    ['tls://192.0.2.1#bad_name!', 'is not a DNS name'],
    ['tls://192.0.2.1/dns-query#dns.example', 'takes no path'],
    ['https://192.0.2.1/dns-query?dns=x#dns.example', 'query string'],
    ['tls://192.0.2.1:99999#dns.example', 'port'],
  ])('refuses %p saying %p', (text, why) => {
    let err: unknown;
    try {
      parseServerSpec(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as DnssealError).code).toBe('upstream_invalid');
    expect((err as Error).message).toContain(why);
  });

  test('formats the canonical text used in logs and status when given each kind', () => {
    expect(formatServerSpec(parseServerSpec('2001:db8::1'))).toBe('[2001:db8::1]:53');
    expect(formatServerSpec(parseServerSpec('tls://192.0.2.1#dns.example'))).toBe('tls://192.0.2.1:853#dns.example');
    expect(formatServerSpec(parseServerSpec('https://192.0.2.1#dns.example'))).toBe('https://192.0.2.1:443/dns-query#dns.example');
  });
});
