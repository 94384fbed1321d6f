import { describe, expect, test } from 'bun:test';
import { InterfaceWatcher, tcxLinkName } from '../../../src/datapath/ebpf/attach.ts';
import type { Bpf } from '../../../src/datapath/ebpf/bpf-syscall.ts';
import { PinPaths } from '../../../src/datapath/ebpf/pins.ts';
import { createLogger } from '../../../src/util/log.ts';

/** A Bpf whose interface exists and whose program cannot be opened with the error `why()`. */
function failingBpf(why: () => string): Bpf {
  return {
    ifIndex: () => 7,
    objGet: () => {
      throw new Error(why());
    },
    close: () => {},
  } as unknown as Bpf;
}

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

  test('an attach that keeps failing is logged once per distinct error, not on every poll', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });
    let why = 'EPERM: operation not permitted';
    // scope 'off': the marker alone (the guards would also go on every interface of this namespace)
    const w = new InterfaceWatcher(failingBpf(() => why), new PinPaths('/nonexistent-dnsseal-test'), [{ name: 'lan0', hook: 'lan' }], log, 'tcx', undefined, 'off');
    for (let i = 0; i < 5; i++) expect(w.sync()).toEqual(['lan0']);
    expect(lines.filter((l) => l.includes('attaching tc program failed'))).toHaveLength(1);
    why = 'ENOSPC: no space left';
    w.sync();
    w.sync();
    const failed = lines.filter((l) => l.includes('attaching tc program failed'));
    expect(failed).toHaveLength(2);
    expect(failed[1]).toContain('ENOSPC');
  });
});
