/**
 * The registry's metrics, declared in one place. Labels are bounded: `channel` (configured
 * channel names), `outcome` and `reason` (the fixed sets below) — never a name or an address.
 */
import type { Counter, CounterSeries, Gauge, Histogram, HistogramSeries, Metrics } from '../ops/metrics.ts';
import { DnssealError } from '../util/errors.ts';

export type RegisterOutcome = 'ok' | 'map_full' | 'conflict' | 'datapath_error' | 'channel_failed' | 'datapath_lost' | 'withdrawn';

/**
 * Buckets of the registration latency (s): finer than the default under 100 µs, where a tunnel
 * registration lands (a map write is a few µs) and the target sits (issue 12: p99 ≤ 100 µs);
 * up to seconds for peer channels that wait for their SA.
 */
export const REGISTER_BUCKETS = [
  0.000001, 0.0000025, 0.000005, 0.00001, 0.00002, 0.00003, 0.00005, 0.000075, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5,
];

/** Why an entry was retired: its hold ran out and it went idle, a flush, a reload or statics change. */
export type RetireReason = 'expired' | 'flushed' | 'config';

/** Why an entry left the map: retired and quiet for `retire`, evicted for room, or a failed registration. */
export type RemoveReason = 'expired' | 'evicted' | 'rollback';

export class RegistryMetrics {
  readonly entries: Gauge;
  readonly fill: Gauge;
  readonly registrations: Counter;
  readonly mapFull: Counter;
  readonly registerSeconds: Histogram;
  /** The `ok` series of the two above, resolved once: every protected answer counts in them. */
  readonly registrationsOk: CounterSeries;
  readonly registerSecondsOk: HistogramSeries;
  readonly removed: Counter;
  readonly blocked: Gauge;
  readonly retired: Gauge;
  readonly retiredTotal: Counter;
  readonly evicted: Counter;
  private readonly seenChannels = new Set<string>();

  constructor(metrics: Metrics) {
    this.entries = metrics.gauge('dnsseal_registry_entries', 'Protected (group, address) entries by channel (live and retired).');
    this.fill = metrics.gauge('dnsseal_registry_map_fill_ratio', 'Registry entries divided by the destination map capacity.');
    this.registrations = metrics.counter(
      'dnsseal_registry_registrations_total',
      'Registrations of DNS answers by outcome (ok, map_full, conflict, datapath_error, channel_failed, datapath_lost, withdrawn).',
    );
    this.mapFull = metrics.counter('dnsseal_registry_map_full_total', 'Registrations refused because the destination map was full.');
    this.registerSeconds = metrics.histogram(
      'dnsseal_registry_register_seconds',
      'Time from register() called to every address written (and peer channels ready).',
      REGISTER_BUCKETS,
    );
    this.registrationsOk = this.registrations.series({ outcome: 'ok' });
    this.registerSecondsOk = this.registerSeconds.series({ outcome: 'ok' });
    this.removed = metrics.counter(
      'dnsseal_registry_removed_total',
      'Entries removed from the map, by reason (expired: retired and no packet for `retire`; evicted; rollback).',
    );
    this.blocked = metrics.gauge(
      'dnsseal_registry_blocked_entries',
      'Entries whose peer channel could not be set up: kept in the map so their traffic is dropped, by channel.',
    );
    this.retired = metrics.gauge(
      'dnsseal_registry_retired_entries',
      'Retired entries (hold ran out and idle, flushed or withdrawn): still in the map, tunnel traffic steered, peer traffic dropped; by channel.',
    );
    this.retiredTotal = metrics.counter(
      'dnsseal_registry_retired_total',
      'Entries that became retired, by reason (expired: hold ran out and idle; flushed; config: a reload or statics change withdrew them).',
    );
    this.evicted = metrics.counter(
      'dnsseal_registry_evicted_total',
      'Retired entries evicted (oldest first) because an answer needed room in a full destination map.',
    );
  }

  /** Sets the per-channel gauges; channels seen before and now empty drop to 0. */
  setEntries(
    byChannel: Map<string, number>,
    total: number,
    capacity?: number,
    blockedByChannel = new Map<string, number>(),
    retiredByChannel = new Map<string, number>(),
  ): void {
    for (const ch of this.seenChannels) {
      if (!byChannel.has(ch)) this.entries.set(0, { channel: ch });
      if (!blockedByChannel.has(ch)) this.blocked.set(0, { channel: ch });
      if (!retiredByChannel.has(ch)) this.retired.set(0, { channel: ch });
    }
    for (const [gauge, counts] of [
      [this.entries, byChannel],
      [this.blocked, blockedByChannel],
      [this.retired, retiredByChannel],
    ] as const) {
      for (const [ch, n] of counts) {
        this.seenChannels.add(ch);
        gauge.set(n, { channel: ch });
      }
    }
    if (capacity) this.fill.set(total / capacity);
  }
}

/** The bounded outcome label for a registration error (its DnssealError code). */
export function outcomeOf(err: unknown): RegisterOutcome {
  const code = err instanceof DnssealError ? err.code : '';
  if (code === 'map_full') return 'map_full';
  if (code === 'channel_conflict') return 'conflict';
  if (code === 'channel_failed') return 'channel_failed';
  if (code === 'datapath_lost') return 'datapath_lost';
  if (code === 'withdrawn') return 'withdrawn';
  return 'datapath_error';
}
