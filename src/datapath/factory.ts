/**
 * Picks the datapath backend and logs which one and why (the Tailscale habit: the operator
 * must be able to see from the log whether anything is being protected at all).
 *
 * - `ebpf`: the eBPF backend, or an error if it cannot be brought up (never a silent fallback).
 * - `none`: records only; nothing is protected.
 * - `fake`: in-memory with a capacity, for tests.
 * - `auto`: `ebpf` when the backend loads. When it cannot and the configuration can protect
 *   anything (`protects`: rules, statics, a policy server), an error saying why eBPF failed and
 *   how to run record-only on purpose (`--datapath none`): a daemon that cannot protect never
 *   answers protected names with their addresses (issue #11 item 1). Only with nothing to
 *   protect does it fall back to `none`, with a warning.
 *
 * The eBPF backend is injected (`deps.ebpf`, normally `createEbpfDatapath` from
 * `src/datapath/ebpf/index.ts`) so this file does not depend on it.
 */
import type { DatapathKind } from '../config/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Datapath } from './datapath.ts';
import { FakeDatapath } from './fake.ts';
import { NoneDatapath } from './none.ts';

export interface DatapathFactoryDeps {
  log: Logger;
  clock: Clock;
  /** Capacity for the `fake` backend. */
  capacity?: number;
  /** Brings up the eBPF backend; throws a DnssealError when it cannot. */
  ebpf?: () => Datapath;
  /**
   * What the configuration would protect, in words for the error (`3 rules with a channel`,
   * `policy server corp`); empty: nothing. Absent counts as "might protect" (fail closed).
   */
  protects?: string[];
}

export function createDatapath(kind: DatapathKind, deps: DatapathFactoryDeps): Datapath {
  const { log } = deps;
  switch (kind) {
    case 'none':
      log.warn('datapath: using backend none (configured); addresses are recorded, nothing is protected', {
        backend: 'none',
      });
      return new NoneDatapath();
    case 'fake':
      log.info('datapath: using backend fake (configured; in-memory, tests only)', { backend: 'fake' });
      return new FakeDatapath({ capacity: deps.capacity, clock: deps.clock });
    case 'ebpf': {
      if (!deps.ebpf) {
        throw new DnssealError('datapath', 'unavailable', 'backend ebpf was requested but this build has no eBPF backend');
      }
      let dp: Datapath;
      try {
        dp = deps.ebpf();
      } catch (err) {
        if (err instanceof DnssealError) throw err;
        throw new DnssealError('datapath', 'unavailable', `backend ebpf could not start: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      log.info('datapath: using backend ebpf (configured)', { backend: dp.kind });
      return dp;
    }
    case 'auto': {
      let why: string;
      let cause: unknown;
      if (!deps.ebpf) {
        why = 'this build has no eBPF backend';
      } else {
        try {
          const dp = deps.ebpf();
          log.info('datapath: using backend ebpf (auto: eBPF available)', { backend: dp.kind });
          return dp;
        } catch (err) {
          why = errorMessage(err);
          cause = err;
        }
      }
      const protects = deps.protects ?? ['(not given)'];
      if (protects.length > 0) {
        throw new DnssealError(
          'datapath',
          'ebpf_required',
          `auto: eBPF could not start (${why}), and this configuration protects traffic (${protects.join(', ')}): ` +
            'refusing to run, since protected names would be answered while nothing marks or guards their traffic. ' +
            'Fix eBPF (run as root or with CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN, bpffs mounted at /sys/fs/bpf), ' +
            'or record only, protecting nothing, on purpose with --datapath none (config: datapath: none)',
          { cause },
        );
      }
      log.warn('datapath: using backend none (auto: eBPF unavailable, and the configuration protects nothing); nothing is protected', {
        backend: 'none',
        reason: why,
      });
      return new NoneDatapath();
    }
    default: {
      const never: never = kind;
      throw new DnssealError('datapath', 'unknown_backend', `unknown datapath backend ${String(never)} (use ebpf, none or auto)`);
    }
  }
}
