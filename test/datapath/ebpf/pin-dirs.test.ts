/**
 * Pin directories must be dnsseal's own: whoever may write one may unlink the pinned links in
 * it, which detaches the leak guard. The real check runs as root on bpffs (CI), with a pin root
 * created beforehand by another user, as anyone can where /sys/fs/bpf is world-writable.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { PinPaths, onBpffs, pinDirProblem, preparePinDirs } from '../../../src/datapath/ebpf/pins.ts';
import { DnssealError } from '../../../src/util/errors.ts';
import { silentLogger } from '../../../src/util/log.ts';

describe('datapath/ebpf/pins pinDirProblem', () => {
  test.each([
    ['its own, 0755', 0, 0o40755, undefined],
    ['its own, 0700', 0, 0o40700, undefined],
    ['another uid', 65534, 0o40755, 'belongs to uid 65534, not to this process (uid 0)'],
    ['group-writable', 0, 0o40775, 'is writable by its group (mode 775)'],
    ['world-writable and sticky', 0, 0o41777, 'is writable by everyone (mode 1777)'],
  ])('a pin directory that is %s: %p', (_what, uid, mode, problem) => {
    const got = pinDirProblem('/sys/fs/bpf/dnsseal', { uid, mode }, 0);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });
});

const root = `/sys/fs/bpf/dnsseal-test-owner-${process.pid}`;
const why = process.getuid?.() !== 0 ? 'not root' : !existsSync('/sys/fs/bpf') || !onBpffs('/sys/fs/bpf/x') ? 'no bpffs at /sys/fs/bpf' : '';
if (why) console.log(`skip: real pin directories: ${why}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.skipIf(Boolean(why))('datapath/ebpf/pins preparePinDirs on bpffs', () => {
  test('refuses a pin root another user created, and one others may write, before anything is pinned', () => {
    mkdirSync(root);
    chownSync(root, 65534, 65534);
    let err: unknown;
    try {
      preparePinDirs(new PinPaths(root), silentLogger);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as Error).message).toContain(`${root} belongs to uid 65534`);
    expect(existsSync(`${root}/maps`)).toBe(false);

    chownSync(root, 0, 0);
    chmodSync(root, 0o777);
    expect(() => preparePinDirs(new PinPaths(root), silentLogger)).toThrow('is writable by everyone');

    chmodSync(root, 0o755);
    preparePinDirs(new PinPaths(root), silentLogger);
    for (const d of ['maps', 'progs', 'links']) expect(statSync(`${root}/${d}`).mode & 0o022).toBe(0);
  });
});
