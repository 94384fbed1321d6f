/**
 * The registry's metrics, declared in one place. Labels are bounded: `channel` (configured
 * channel names) and `outcome` (the fixed set below) — never a name or an address.
 */
import type { Counter, Gauge, Histogram, Metrics } from '../ops/metrics.ts';
import { DnssealError } from '../util/errors.ts';

export type RegisterOutcome = 'ok' | 'map_full' | 'conflict' | 'datapath_error' | 'channel_failed' | 'datapath_lost';

export class RegistryMetrics {
  readonly entries: Gauge;
  readonly fill: Gauge;
  readonly registrations: Counter;
  readonly mapFull: Counter;
  readonly registerSeconds: Histogram;
  readonly removed: Counter;
  readonly blocked: Gauge;
  private readonly seenChannels = new Set<string>();

  constructor(metrics: Metrics) {
    this.entries = metrics.gauge('dnsseal_registry_entries', 'Protected (group, address) entries by channel.');
    this.fill = metrics.gauge('dnsseal_registry_map_fill_ratio', 'Registry entries divided by the destination map capacity.');
    this.registrations = metrics.counter(
      'dnsseal_registry_registrations_total',
      'Registrations of DNS answers by outcome (ok, map_full, conflict, datapath_error, channel_failed, datapath_lost).',
    );
    this.mapFull = metrics.counter('dnsseal_registry_map_full_total', 'Registrations refused because the destination map was full.');
    this.registerSeconds = metrics.histogram(
      'dnsseal_registry_register_seconds',
      'Time from register() called to every address written (and peer channels ready).',
    );
    this.removed = metrics.counter('dnsseal_registry_removed_total', 'Entries removed, by reason (expired, withdrawn, rollback).');
    this.blocked = metrics.gauge(
      'dnsseal_registry_blocked_entries',
      'Entries whose peer channel could not be set up: kept in the map so their traffic is dropped, by channel.',
    );
  }

  /** Sets the per-channel gauge; channels seen before and now empty drop to 0. */
  setEntries(byChannel: Map<string, number>, total: number, capacity?: number, blockedByChannel = new Map<string, number>()): void {
    for (const ch of this.seenChannels) {
      if (!byChannel.has(ch)) this.entries.set(0, { channel: ch });
      if (!blockedByChannel.has(ch)) this.blocked.set(0, { channel: ch });
    }
    for (const [ch, n] of byChannel) {
      this.seenChannels.add(ch);
      this.entries.set(n, { channel: ch });
    }
    for (const [ch, n] of blockedByChannel) {
      this.seenChannels.add(ch);
      this.blocked.set(n, { channel: ch });
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
  return 'datapath_error';
}
