import { describe, expect, test } from 'bun:test';
import { tcxLinkName } from '../../../src/datapath/ebpf/attach.ts';

describe('datapath/ebpf/attach', () => {
  test.each([
    ['wan', 'eth0', 'tcx_wan_eth0'],
    ['lan', 'lan0', 'tcx_lan_lan0'],
    ['wan', 'eth0.100', 'tcx_wan_eth0:100'],
    ['wan', 'br.lan.7', 'tcx_wan_br:lan:7'],
  ] as const)('names the %s link of %s %s, with no dot (bpffs refuses dots)', (hook, ifname, want) => {
    expect(tcxLinkName(hook, ifname)).toBe(want);
    expect(tcxLinkName(hook, ifname)).not.toContain('.');
  });

  test('gives different pins to interfaces whose names differ only by a dot or an underscore', () => {
    const names = ['eth0.100', 'eth0_100', 'eth0100'].map((n) => tcxLinkName('wan', n));
    expect(new Set(names).size).toBe(3);
  });
});
