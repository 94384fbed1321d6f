/**
 * The query log (issue 12): with `log_queries: true`, or `dnsseal log queries on` at run time,
 * one structured line per query in the log's format (logfmt or JSON, `log_format`), written
 * whatever `log_level` says:
 *
 *   ts=… level=info msg=query client=10.1.0.7 proto=udp name=app.corp.example type=A
 *     rcode=NOERROR upstream=default latency_ms=1.204 cache=false table=default
 *     rule=*.corp.example channel=hub addrs=203.0.113.10,203.0.113.11
 *
 * - `client`: the address the query was classified by (`via`: the sender, when a trusted
 *   forwarder named the client in EDNS Client Subnet); `proto`: udp or tcp;
 * - `rcode`: what the client got (`reason` says why for SERVFAIL, REFUSED and local errors);
 * - `upstream`: the upstream asked (absent when none was: refused, canary, malformed);
 * - `latency_ms`: from the query's arrival to its answer;
 * - `cache`: whether the answer came from the answer cache (src/cache; a stale answer too);
 * - `table`, `rule`, `channel`: the decision (rule and channel only when a rule matched);
 * - `addrs`: the addresses registered before the answer was released (protected answers).
 *
 * A query that is not answered (a runt, a response) has no line. Off, it costs the pipeline
 * one property read per query (bench/query-log.ts).
 */
import type { Decision } from '../policy/types.ts';
import type { LogFields, Logger } from '../util/log.ts';
import type { ClientTransport } from './handler.ts';

export interface QueryLogEntry {
  /** The address the query was classified by. */
  client: string;
  /** The sender, when it differs from `client` (a trusted forwarder). */
  via?: string;
  transport: ClientTransport;
  name: string;
  type: number;
  rcode: number;
  /** Why (SERVFAIL, REFUSED, local errors). */
  reason?: string;
  /** The upstream asked; null: none. */
  upstream: string | null;
  latencyMs: number;
  cached: boolean;
  decision: Decision | null;
  /** Registered before the answer was released. */
  addrs: readonly string[];
}

const TYPES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 52: 'TLSA', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 255: 'ANY', 257: 'CAA',
};
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

export function typeName(t: number): string {
  return TYPES[t] ?? `TYPE${t}`;
}

export function rcodeName(r: number): string {
  return RCODES[r] ?? (r === 16 ? 'BADVERS' : `RCODE${r}`);
}

/** The fields of one line, in order (absent ones undefined: left out in either format). */
export function queryLogFields(e: QueryLogEntry): LogFields {
  const d = e.decision;
  return {
    client: e.client,
    via: e.via,
    proto: e.transport,
    name: e.name === '' ? '.' : e.name,
    type: typeName(e.type),
    rcode: rcodeName(e.rcode),
    reason: e.reason,
    upstream: e.upstream ?? undefined,
    latency_ms: Math.round(e.latencyMs * 1000) / 1000,
    cache: e.cached,
    table: d?.table,
    rule: d?.rule?.condition.pattern ?? undefined,
    channel: d?.channel?.name ?? undefined,
    held_by: d?.heldBy,
    addrs: e.addrs.length > 0 ? e.addrs.join(',') : undefined,
  };
}

/** Whether queries are logged (switched live), and the writing of a line. */
export class QueryLog {
  /** Read by the pipeline on every query: nothing else is done while it is false. */
  on: boolean;

  constructor(
    private readonly log: Logger,
    on = false,
  ) {
    this.on = on;
  }

  set(on: boolean): void {
    this.on = on;
  }

  write(e: QueryLogEntry): void {
    this.log.record('query', queryLogFields(e));
  }
}
