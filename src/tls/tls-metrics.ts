/**
 * The TLS channel's metrics. Labels are bounded: side (`relay`, `accept`), channel (configured
 * names), outcome and reason (the unions in types.ts), direction (`upstream` = from the
 * application towards its destination, `downstream` = back). Byte counts are plain numbers
 * bumped per chunk and read at each scrape (no label handling on the data path).
 */
import type { Counter, Histogram, Metrics } from '../ops/metrics.ts';
import type { AcceptOutcome, HandshakeFailure, RelayOutcome } from './types.ts';

export type Side = 'relay' | 'accept';

const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class TlsMetrics {
  readonly bytes = { relay: { upstream: 0, downstream: 0 }, accept: { upstream: 0, downstream: 0 } };
  readonly active = { relay: 0, accept: 0, pending: 0 };
  private readonly relayFlows: Counter;
  private readonly acceptFlows: Counter;
  private readonly failures: Counter;
  private readonly handshake: Histogram;

  constructor(metrics: Metrics) {
    this.relayFlows = metrics.counter('dnsseal_tls_relay_connections_total', 'Relayed TCP connections by channel and outcome');
    this.acceptFlows = metrics.counter('dnsseal_tls_accept_connections_total', 'Connections to the accepting side by outcome');
    this.failures = metrics.counter('dnsseal_tls_handshake_failures_total', 'TLS handshakes that failed, by side and reason');
    this.handshake = metrics.histogram('dnsseal_tls_handshake_seconds', 'TLS handshake time (TCP connect or accept to verified peer), by side', HANDSHAKE_BUCKETS);
    metrics.counterFrom('dnsseal_tls_bytes_total', 'Bytes carried through TLS channels, by side and direction', () => [
      [{ side: 'relay', direction: 'upstream' }, this.bytes.relay.upstream],
      [{ side: 'relay', direction: 'downstream' }, this.bytes.relay.downstream],
      [{ side: 'accept', direction: 'upstream' }, this.bytes.accept.upstream],
      [{ side: 'accept', direction: 'downstream' }, this.bytes.accept.downstream],
    ]);
    const active = metrics.gauge('dnsseal_tls_connections', 'Open connections: relay flows, accepted flows, accepted connections still in handshake or preamble');
    metrics.onCollect(() => {
      active.set(this.active.relay, { state: 'relay' });
      active.set(this.active.accept, { state: 'accept' });
      active.set(this.active.pending, { state: 'pending' });
    });
  }

  relayFlow(channel: string, outcome: RelayOutcome): void {
    this.relayFlows.inc({ channel, outcome });
  }
  acceptFlow(outcome: AcceptOutcome): void {
    this.acceptFlows.inc({ outcome });
  }
  handshakeFailed(side: Side, reason: HandshakeFailure): void {
    this.failures.inc({ side, reason });
  }
  handshakeDone(side: Side, seconds: number): void {
    this.handshake.observe(seconds, { side });
  }
  relayCount(side: Side, dir: 'upstream' | 'downstream', n: number): void {
    this.bytes[side][dir] += n;
  }
  get(): { relay: Counter; accept: Counter; failures: Counter } {
    return { relay: this.relayFlows, accept: this.acceptFlows, failures: this.failures };
  }
}
