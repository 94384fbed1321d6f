import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BpfError, ENOENT } from '../../../../src/datapath/ebpf/bpf-syscall.ts';
import { ensureLink, ifLinkName, openPinnedProg, pinSafeIfname } from '../../../../src/datapath/ebpf/lib/link-pin.ts';
import type { DnssealError } from '../../../../src/util/errors.ts';
import { FakeTcKernel } from './fake-tc-kernel.ts';

const dir = mkdtempSync(`${tmpdir()}/dnsseal-linkpin-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('datapath/ebpf/lib/link-pin', () => {
  test.each([
    ['icpt_in', 'lan.30', 'icpt_in_lan:30'],
    ['tcx_guard', 'wg0', 'tcx_guard_wg0'],
    ['x', 'a.b.c', 'x_a:b:c'],
  ])('names the %s link of %s %s, with no dot (bpffs refuses dots)', (prefix, ifname, want) => {
    expect(ifLinkName(prefix, ifname)).toBe(want);
    expect(pinSafeIfname(ifname)).not.toContain('.');
  });

  test('replaces a pin that is not a link when ensuring the link', () => {
    const k = new FakeTcKernel(dir);
    const idx = k.addInterface('e0');
    k.pinProg('p', `${dir}/p`);
    const pin = `${dir}/foreign`;
    writeFileSync(pin, ''); // a pin the fake does not know: BPF_OBJ_GET fails
    const progFd = k.bpf.objGet(`${dir}/p`);
    const how = ensureLink(k.bpf, pin, progFd, () => k.bpf.linkCreate(progFd, idx, 47), () => true);
    expect(how).toBe('created');
    expect(existsSync(pin)).toBe(true);
    expect(k.attached('e0', 'egress')).toEqual(['p']);
  });

  test('reports a program that is not pinned as not_loaded of the component when opening it', () => {
    const bpf = {
      objGet: (path: string): number => {
        throw new BpfError('not_found', `BPF_OBJ_GET ${path}: ENOENT`, ENOENT);
      },
    };
    let err: DnssealError | undefined;
    try {
      openPinnedProg(bpf, '/sys/fs/bpf/x/progs/dnsseal_nat_in', 'dnsseal_nat_in', 'intercept');
    } catch (e) {
      err = e as DnssealError;
    }
    expect(err?.code).toBe('not_loaded');
    expect(err?.message).toBe('intercept: program dnsseal_nat_in is not pinned under /sys/fs/bpf/x/progs');
  });
});
