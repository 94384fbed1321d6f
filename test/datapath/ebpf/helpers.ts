/** Shared set-up for the privileged eBPF tests: root check, scratch pin roots, a quiet backend. */
import { existsSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { createEbpfDatapath, ebpfUnavailableReason, type EbpfDatapathDeps } from '../../../src/datapath/ebpf/index.ts';
import { teardown } from '../../../src/datapath/teardown.ts';
import { Metrics } from '../../../src/ops/metrics.ts';
import { realClock } from '../../../src/util/clock.ts';
import { silentLogger } from '../../../src/util/log.ts';

/** Why privileged eBPF tests cannot run here (printed), or undefined. */
export function privSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('build/dnsseal.bpf.o')) return 'build/dnsseal.bpf.o missing (make bpf)';
  return ebpfUnavailableReason();
}

/** tcx (BPF_TCX_INGRESS/EGRESS links) exists from Linux 6.6; Debian 12's 6.1 has only clsact. */
export function kernelHasTcx(release: string = osRelease()): boolean {
  const [maj = 0, min = 0] = release.split(/[.-]/).map(Number);
  return maj > 6 || (maj === 6 && min >= 6);
}

export function scratchPinRoot(tag: string): string {
  return `/sys/fs/bpf/dnsseal-test-${tag}-${process.pid}`;
}

export async function wipe(pinRoot: string): Promise<void> {
  await teardown(silentLogger, { pinRoot });
}

export function makeDp(pinRoot: string, extra: Partial<EbpfDatapathDeps> = {}) {
  return createEbpfDatapath({
    cfg: { mode: 'gateway', lan: [], wan: [], channels: [] },
    log: silentLogger,
    clock: realClock,
    metrics: new Metrics(),
    pinRoot,
    attach: false,
    pollMs: 0,
    ...extra,
  });
}
