/**
 * compileClientTable: the client table as the programs read it from dnsseal_config — the order and
 * families the dnsseal_clients LPM trie would answer in. (test/bpf/verdict.test.ts runs the
 * programs over the same tables in both modes and compares them with the trie.)
 */
import { describe, expect, test } from 'bun:test';
import { compileClientTable, type InlineClient } from '../../../src/datapath/ebpf/client-table.ts';
import { CFG_CLIENTS } from '../../../src/datapath/layout.ts';
import { formatIP } from '../../../src/util/ip.ts';

function rows(list: InlineClient[]): string[] {
  const bits = (m: Uint8Array) => [...m].reduce((n, b) => n + b.toString(2).replace(/0/g, '').length, 0);
  return list.map((r) => `${formatIP(r.net)}/${bits(r.mask)}=${r.group}@${r.rank}`);
}

describe('datapath/ebpf/client-table', () => {
  test('both lists are empty when there are no client CIDRs', () => {
    expect(compileClientTable([])).toEqual({ v4: [], v6: [] });
  });

  test('both lists are empty when every CIDR is in the default group', () => {
    const many = Array.from({ length: CFG_CLIENTS * 3 }, (_, i) => ({ cidr: `10.${i}.0.0/16`, group: 0 }));
    expect(compileClientTable(many)).toEqual({ v4: [], v6: [] });
  });

  test('longest prefix comes first when CIDRs nest', () => {
    const t = compileClientTable([
      { cidr: '10.0.0.0/8', group: 1 },
      { cidr: '10.1.2.0/24', group: 3 },
      { cidr: '10.1.0.0/16', group: 2 },
      { cidr: 'fd00::/8', group: 4 },
      { cidr: 'fd00:5::/64', group: 5 },
    ])!;
    expect(rows(t.v4)).toEqual(['10.1.2.0/24=3@120', '10.1.0.0/16=2@112', '10.0.0.0/8=1@104']);
    expect(rows(t.v6)).toEqual(['fd00:5::/64=5@64', 'fd00::/8=4@8']);
  });

  test('an IPv6 CIDR covering the IPv4-mapped range matches IPv4 clients too when its prefix is under 96', () => {
    const t = compileClientTable([
      { cidr: '::/0', group: 9 },
      { cidr: '10.0.0.0/8', group: 1 },
      { cidr: '::/64', group: 8 },
      { cidr: '2001:db8::/32', group: 7 },
    ])!;
    // The trie ranks ::/64 (64) and ::/0 (0) below every IPv4 CIDR (96 + prefix).
    expect(rows(t.v4)).toEqual(['10.0.0.0/8=1@104', '0.0.0.0/0=8@64', '0.0.0.0/0=9@0']);
    expect(rows(t.v6)).toEqual(['::/64=8@64', '2001:db8::/32=7@32', '::/0=9@0']);
  });

  test('an IPv6 CIDR that does not cover the mapped range stays out of the IPv4 list', () => {
    const t = compileClientTable([{ cidr: '::/96', group: 2 }, { cidr: '64:ff9b::/96', group: 3 }])!;
    expect(t.v4).toEqual([]);
    expect(rows(t.v6)).toEqual(['::/96=2@96', '64:ff9b::/96=3@96']);
  });

  test('an IPv4-mapped CIDR is an IPv4 CIDR when written in IPv6 form', () => {
    const t = compileClientTable([{ cidr: '::ffff:10.0.0.0/104', group: 2 }])!;
    expect(rows(t.v4)).toEqual(['10.0.0.0/8=2@104']);
    expect(t.v6).toEqual([]);
  });

  test('the last group wins when a CIDR is given twice', () => {
    const t = compileClientTable([{ cidr: '10.1.0.0/16', group: 2 }, { cidr: '10.1.0.0/16', group: 5 }])!;
    expect(rows(t.v4)).toEqual(['10.1.0.0/16=5@112']);
  });

  test.each([
    ['IPv4', (i: number) => `10.${i}.0.0/16`],
    ['IPv6', (i: number) => `fd00:${i.toString(16)}::/32`],
  ])('undefined (use the trie) when one family has more CIDRs than fit and the family is %s', (_f, cidr) => {
    const fits = Array.from({ length: CFG_CLIENTS }, (_, i) => ({ cidr: cidr(i), group: 1 }));
    expect(compileClientTable(fits)).toBeDefined();
    expect(compileClientTable([...fits, { cidr: cidr(CFG_CLIENTS), group: 1 }])).toBeUndefined();
  });

  test('throws bad_cidr naming the CIDR when one does not parse', () => {
    expect(() => compileClientTable([{ cidr: '10.1.2.3/16', group: 1 }])).toThrow(/client CIDR 10\.1\.2\.3\/16/);
  });
});
