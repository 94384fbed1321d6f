/**
 * Health of one server of an upstream set: up or down (since when, why), answer latency as an
 * EWMA, answers and failures by reason. State changes are logged here, once each: `warn` when
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
  /** performance.now() when it went down; a success counts as recovery only for queries sent later. */
  downAt = 0;
  lastError: string | null = null;
  errno: string | null = null;
  latencyMs: number | null = null;
  answers = 0;
  /** performance.now() of the last answer; -1 before the first. */
  lastAnswerAt = -1;
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

  /** An answer to a query sent at `sentAt` (performance.now()). Returns true when this brought the server back. */
  success(sentAt: number, now: number): boolean {
    const ms = now - sentAt;
    this.latencyMs = this.latencyMs === null ? ms : this.latencyMs + EWMA_ALPHA * (ms - this.latencyMs);
    this.answers++;
    this.lastAnswerAt = now;
    if (this.up || sentAt < this.downAt) return false;
    const downForS = Math.round((this.clock.nowMs() - this.sinceMs) / 100) / 10;
    this.up = true;
    this.sinceMs = this.clock.nowMs();
    this.log.info('upstream: server answering again', { upstream: this.upstream, server: this.server, down_s: downForS });
    return true;
  }

  /** A failed exchange. Returns true when this took the server down. */
  failure(err: unknown, now: number, next: string | null): boolean {
    const reason = err instanceof UpstreamError ? err.reason : 'other';
    this.failures[reason] = (this.failures[reason] ?? 0) + 1;
    this.lastError = errorMessage(err);
    this.errno = errnoOf(err) ?? null;
    if (!this.up) return false;
    this.up = false;
    this.downAt = now;
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
