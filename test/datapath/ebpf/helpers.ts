/** Shared set-up for the privileged eBPF tests: root check, scratch pin roots, a quiet backend. */
import { existsSync } from 'node:fs';
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
