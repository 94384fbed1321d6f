/**
 * Health of one server of an upstream set: up or down (since when, why), answer latency as an
 * EWMA (of a sample of the answers: a clock read costs ~30 ns, the set reads it for one query
 * in 8 and every probe), answers and failures by reason. State changes are logged here, once each: `warn` when
 * the server goes down (with the server, the reason and the errno), `info` when it is back.
 *
 * A failure marks the server down at once (the set skips it from the next query on); a success
 * marks it up only for a query sent after it went down (a probe, or a query sent while every
 * server was down) — answers to queries already in flight when it failed must not flip it back
 * and forth.
 */
import type { Clock } from '../util/clock.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { UpstreamError, errnoOf, type UpstreamFailure } from './upstream.ts';

/** Weight of a new latency sample in the average. */
const EWMA_ALPHA = 0.2;

export interface ServerHealth {
  /** Position in the configured list (the `server` metric label). */
  index: number;
  /** The server as configured, canonical (`192.0.2.1:53`, `tls://…#name`). */
  server: string;
  state: 'up' | 'down';
  /** Wall-clock ms of the last state change (start-up for a server never down). */
  sinceMs: number;
  lastError: string | null;
  errno: string | null;
  /** Answer latency, exponentially weighted (α = 0.2); null before the first answer. */
  latencyMs: number | null;
  answers: number;
  failures: Partial<Record<UpstreamFailure | 'other', number>>;
}

export class ServerHealthState {
  up = true;
  sinceMs: number;
  /** Incremented each time the server goes down; a success brings it back only for a query sent in the current epoch. */
  epoch = 0;
  lastError: string | null = null;
  errno: string | null = null;
  latencyMs: number | null = null;
  answers = 0;
  /** Order of the last answer among the set's answers (the set's counter); -1 before the first. */
  lastAnswerSeq = -1;
  failures: Partial<Record<UpstreamFailure | 'other', number>> = {};

  constructor(
    readonly index: number,
    readonly server: string,
    private readonly upstream: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.sinceMs = clock.nowMs();
  }

  /**
   * An answer to a query sent in epoch `sentEpoch`, after `latencyMs` (null: not measured), the
   * set's `seq`-th answer. Returns true when this brought the server back.
   */
  success(sentEpoch: number, latencyMs: number | null, seq: number): boolean {
    if (latencyMs !== null) this.latencyMs = this.latencyMs === null ? latencyMs : this.latencyMs + EWMA_ALPHA * (latencyMs - this.latencyMs);
    this.answers++;
    this.lastAnswerSeq = seq;
    if (this.up || sentEpoch !== this.epoch) return false;
    const downForS = Math.round((this.clock.nowMs() - this.sinceMs) / 100) / 10;
    this.up = true;
    this.sinceMs = this.clock.nowMs();
    this.log.info('upstream: server answering again', { upstream: this.upstream, server: this.server, down_s: downForS });
    return true;
  }

  /** A failed exchange. Returns true when this took the server down. */
  failure(err: unknown, next: string | null): boolean {
    const reason = err instanceof UpstreamError ? err.reason : 'other';
    this.failures[reason] = (this.failures[reason] ?? 0) + 1;
    this.lastError = errorMessage(err);
    this.errno = errnoOf(err) ?? null;
    if (!this.up) return false;
    this.up = false;
    this.epoch++;
    this.sinceMs = this.clock.nowMs();
    this.log.warn('upstream: server not answering, skipped until it answers a probe', {
      upstream: this.upstream,
      server: this.server,
      reason,
      errno: this.errno,
      err: this.lastError,
      next: next ?? 'none',
    });
    return true;
  }

  snapshot(): ServerHealth {
    return {
      index: this.index,
      server: this.server,
      state: this.up ? 'up' : 'down',
      sinceMs: this.sinceMs,
      lastError: this.lastError,
      errno: this.errno,
      latencyMs: this.latencyMs === null ? null : Math.round(this.latencyMs * 1000) / 1000,
      answers: this.answers,
      failures: { ...this.failures },
    };
  }
}
