/**
 * allow_clients' default reads the LAN interfaces' addresses (as tunnels' selectors do); an
 * interface without a usable address is skipped with a warning instead of stopping anything.
 */
import { describe, expect, test } from 'bun:test';
import { lanPrefixesForAccess } from '../../src/proxy/client-acl.ts';
import { createLogger } from '../../src/util/log.ts';

const IP_JSON: Record<string, string> = {
  lan0: JSON.stringify([{ addr_info: [{ family: 'inet', local: '10.1.0.1', prefixlen: 24, scope: 'global' }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }] }]),
  lan1: JSON.stringify([{ addr_info: [] }]),
};

describe('proxy/client-acl lanPrefixesForAccess', () => {
  test('gives the network prefixes of the LAN addresses and warns about an interface without one', () => {
    const lines: string[] = [];
    const read = (iface: string) => {
      const t = IP_JSON[iface];
      if (t === undefined) throw new Error(`Device "${iface}" does not exist.`);
      return t;
    };
    expect(lanPrefixesForAccess(['lan0', 'lan1', 'lan9'], read, createLogger({ write: (l) => void lines.push(l) }))).toEqual(['10.1.0.0/24']);
    expect(lines.filter((l) => l.includes('level=warn') && l.includes('allow_clients'))).toHaveLength(2);
  });
});
