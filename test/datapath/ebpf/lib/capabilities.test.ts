/**
 * Why loading eBPF failed, as the operator reads it: EPERM from a process without CAP_BPF /
 * CAP_NET_ADMIN says so and how to run, not "a pinned map from an incompatible version?"; the
 * pin hint stays where pins can be the cause. The last test loads the real object in a child
 * stripped of every capability (setpriv, as nobody): it needs root to drop them and skips with
 * the reason otherwise; the child touches no pin (the load fails before any map exists).
 */
import { describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { effectiveCapabilities, loadFailureMessage, missingBpfCapabilities } from '../../../../src/datapath/ebpf/lib/capabilities.ts';
import { libbpfUnavailableReason } from '../../../../src/datapath/ebpf/lib/libbpf.ts';

const ROOT = join(import.meta.dir, '../../../..');
const OBJECT = join(ROOT, 'build/dnsseal.bpf.o');
const PIN_HINT = "'dnsseal down' removes the pins";
const bit = (...bits: number[]) => bits.reduce((a, b) => a | (1n << BigInt(b)), 0n);
const NONE = { capEff: 0n, euid: 1000 };
const FULL = { capEff: 0x000001ffffffffffn, euid: 0 };

describe('datapath/ebpf/lib/capabilities', () => {
  test('reads CapEff from /proc/self/status text when it is there', () => {
    expect(effectiveCapabilities('Name:\tbun\nCapPrm:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n')).toBe(0x1ffffffffffn);
    expect(effectiveCapabilities('Name:\tbun\n')).toBeNull();
  });

  test.each([
    ['nothing', 0n, ['CAP_BPF', 'CAP_NET_ADMIN']],
    ['CAP_BPF alone', bit(39), ['CAP_NET_ADMIN']],
    ['CAP_BPF and CAP_NET_ADMIN', bit(39, 12), []],
    ['CAP_SYS_ADMIN alone (it stands for both)', bit(21), []],
  ])('names what is missing when the process has %s', (_n, capEff, missing) => {
    expect(missingBpfCapabilities(capEff, 1000)).toEqual(missing);
  });

  test('falls back to the effective uid when the capabilities cannot be read', () => {
    expect(missingBpfCapabilities(null, 0)).toEqual([]);
    expect(missingBpfCapabilities(null, 1000)).toEqual(['CAP_BPF', 'CAP_NET_ADMIN']);
  });

  test('says which capabilities are missing and how to run, without the pin hint, when an unprivileged load gets EPERM', () => {
    const m = loadFailureMessage(1, NONE);
    expect(m).toBe(
      'loading the eBPF object failed: EPERM: this process lacks CAP_BPF and CAP_NET_ADMIN (effective capabilities 0000000000000000); run dnsseal as root, or with CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON and CAP_SYS_ADMIN (the systemd unit grants them)',
    );
    expect(loadFailureMessage(1, { capEff: null, euid: 1000 })).toContain('lacks CAP_BPF and CAP_NET_ADMIN (effective uid 1000)');
  });

  test('names memlock, lockdown and security modules, not pins, when a privileged load gets EPERM', () => {
    const m = loadFailureMessage(1, FULL);
    expect(m).toContain('EPERM although the process has the capabilities: a locked-memory limit');
    expect(m).not.toContain(PIN_HINT);
  });

  test.each([
    ['EACCES for a privileged process (a pin of another user)', 13, FULL],
    ['EINVAL (a pinned map of another layout)', 22, NONE],
  ])('keeps the pin hint when it can be the cause: %s', (_n, errno, own) => {
    expect(loadFailureMessage(errno, own)).toContain(PIN_HINT);
  });

  const setpriv = Bun.which('setpriv');
  const why =
    process.getuid?.() !== 0 ? 'not root (dropping capabilities needs them)' : !setpriv ? 'no setpriv' : !existsSync(OBJECT) ? `no ${OBJECT} (make bpf)` : libbpfUnavailableReason();
  if (why) console.log(`skip: real unprivileged load: ${why}`);
  test.skipIf(Boolean(why))('says the capabilities are missing when the real object is loaded by a process without any', () => {
    const script = [
      `import { readFileSync } from 'node:fs';`,
      `import { LibbpfObject } from ${JSON.stringify(join(ROOT, 'src/datapath/ebpf/lib/libbpf.ts'))};`,
      `const obj = new LibbpfObject(new Uint8Array(readFileSync(${JSON.stringify(OBJECT)})));`,
      `try { obj.load(); console.log('loaded'); } catch (e) { console.log(e.message); } finally { obj.close(); }`,
    ].join('\n');
    // still uid 0 (the checkout, bun and the object may sit in a directory only root can enter,
    // as a CI clone under a mode-0700 temp dir does), but with an empty bounding set: an exec'd
    // root process gets no capability at all
    const r = Bun.spawnSync([setpriv!, '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', process.execPath, '-e', script], { stdout: 'pipe', stderr: 'pipe' });
    const out = r.stdout.toString().trim();
    expect({ out, err: r.stderr.toString().slice(0, 400) }).toMatchObject({ out: expect.stringMatching(/^bpf: /) });
    expect(out).toStartWith('bpf: loading the eBPF object failed: EPERM: this process lacks CAP_BPF and CAP_NET_ADMIN');
    expect(out).not.toContain(PIN_HINT);
  });
});
