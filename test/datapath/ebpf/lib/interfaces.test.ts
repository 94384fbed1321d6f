import { describe, expect, test } from 'bun:test';
import { allInterfacesExcept, listInterfaces, namedInterfaces, parseProcNetDev, resolveInterfaces } from '../../../../src/datapath/ebpf/lib/interfaces.ts';

/** /proc/net/dev as the kernel prints it. */
const PROC_NET_DEV = [
  'Inter-|   Receive                                                |  Transmit',
  ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
  '    lo:  6417179   86444    0    0    0     0          0         0  6417179   86444    0    0    0     0       0          0',
  '  eth0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0',
  'eth0.100: 12 1 0 0 0 0 0 0 12 1 0 0 0 0 0 0',
  '',
].join('\n');

describe('datapath/ebpf/lib/interfaces', () => {
  test('reads the interface names when given /proc/net/dev text', () => {
    expect(parseProcNetDev(PROC_NET_DEV)).toEqual(['lo', 'eth0', 'eth0.100']);
  });

  test('lists at least lo when reading this namespace', () => {
    expect(listInterfaces()).toContain('lo');
  });

  test('throws a datapath error naming the file when it cannot be read', () => {
    expect(() => listInterfaces('/nonexistent/net/dev')).toThrow(/datapath: cannot list the network interfaces from \/nonexistent/);
  });

  test.each([
    ['a named list, deduplicated', namedInterfaces(['eth0', 'eth9', 'eth0']), ['eth0', 'eth9']],
    ['every interface but lo and the LAN', allInterfacesExcept(['lo', 'br-lan']), ['eth0', 'wg0']],
    ['every interface', allInterfacesExcept([]), ['lo', 'eth0', 'br-lan', 'wg0']],
  ])('resolves %s', (_what, set, want) => {
    expect(resolveInterfaces(set, () => ['lo', 'eth0', 'br-lan', 'wg0'])).toEqual(want);
  });

  test('does not list the namespace when the set is named', () => {
    expect(resolveInterfaces(namedInterfaces(() => ['x']), () => {
      throw new Error('listed');
    })).toEqual(['x']);
  });
});
