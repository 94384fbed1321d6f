/**
 * The request pipeline, top to bottom (DESIGN.md "Request pipeline", patent S101–S106):
 *
 *   receive → admit → classify → local → pre-decide → forward → decide → hold → register → confine → respond
 *
 * `admit` (issue 12, `allow_clients`) answers REFUSED to a sender the access list leaves out.
 * `classify` (issue 11 item 8) picks the address the client is classified by: the sender, or
 * the client a trusted forwarder names in EDNS Client Subnet.
 * `local` (issue 12, `hosts:`) answers a local name (`router.lan`) here, in place of pre-decide and
 * forward: no upstream is asked, and the answer goes on through decide → register like any other,
 * so a protected local name is registered before it is released.
 * `hold` (issue 11 item 9) remembers the CNAME targets of a protected chain for the client's
 * group, so that `decide` protects them when the client asks for them on its own.
 * `confine` (issue 11 item 10) leaves a protected answer only the addresses that were registered;
 * in intercept mode (#6) `intercept` takes its place: it swaps the registered addresses for pool
 * addresses and drops every other one.
 *
 * Each step is one named function below; each returns the next step's input or an
 * `Outcome` that ends the query. `respond` is the only place bytes for the client are made.
 * Fail closed: when registration (S105) does not complete, the client gets SERVFAIL, never
 * the answer (S106), so no address reaches a client before it is in the kernel map.
 * With the query log on (query-log.ts), `respond` is followed by one line per query.
 */
import { CachedHit, isCached } from '../cache/answer-cache.ts';
import { rewriteAnswer } from '../dns/answer-rewrite.ts';
import { scanAnswer, type AnswerScan } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { parseQuery } from '../dns/query.ts';
import { buildErrorResponse, buildHeaderOnlyResponse, relayAnswer, udpLimit } from '../dns/response.ts';
import { RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL } from '../dns/wire.ts';
import type { ChannelSpec, Decision } from '../policy/types.ts';
import type { Registration, RegistryApi } from '../registry/types.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Forwarded, Forwarder } from './forwarder.ts';
import type { ClientInfo, QueryHandler, QueryResult } from './handler.ts';
import type { LocalAnswers } from './local-records.ts';
import { observeUpstream, type ProxyCounters } from './proxy-counters.ts';
import type { QueryLog } from './query-log.ts';
import type { TrustedForwarders } from './trusted-forwarders.ts';
import { UpstreamError, type ExchangeHooks } from './upstream.ts';

/** What the pipeline needs of the policy (src/policy/policy.ts `Policy` provides it). */
export interface PolicyApi {
  /** names[0] is the query name, then its CNAME chain. */
  decide(clientIp: string, names: string[]): Decision;
  /** Before forwarding: which upstream (split DNS). */
  preDecide(clientIp: string, qname: string): Decision;
}

/**
 * A policy server among the upstreams (#5). Queries whose pre-decision names no other upstream
 * go to it, signed; an answer is taken only when `accept` verified its TSIG (a forged UDP answer
 * is ignored, the genuine one may still come; TCP fails → SERVFAIL `unverified`). Which wins:
 * a local rule that protects the names wins; otherwise the server's verified decision applies,
 * under our own kernel group for the client. Built by `policyServerLink()` in
 * src/policy-server/proxy-side.ts.
 */
export interface PolicyServerLink {
  upstream: string;
  /** Fresh hooks per attempt; gateway modes name the client (ECS) so its own table applies. */
  hooks(clientIp: string): ExchangeHooks;
  /** The verified decision carried by the answer the hooks accepted (null: none). */
  decisionOf(hooks: ExchangeHooks): Decision | null;
  /** Resolves once a channel the server named can carry traffic (its tunnel loaded); rejects → SERVFAIL. */
  channelReady?(channel: ChannelSpec): Promise<void>;
}

export interface PipelineDeps {
  policy: PolicyApi;
  registry: RegistryApi;
  /**
   * `resolveNow` (the cache, src/cache/caching-forwarder.ts): a hit comes back as it is, not in
   * a promise, and the query goes on in the same turn; absent: `forward`.
   */
  forwarder: Pick<Forwarder, 'forward'> & { resolveNow?(query: ParsedQuery, upstream: string | null): Forwarded | Promise<Forwarded> };
  /**
   * Names of the configured upstreams. With only `default` there is nothing for the
   * pre-decision to choose, so S102 is skipped (it costs a policy lookup per query).
   */
  upstreamNames?: string[];
  counters: ProxyCounters;
  log: Logger;
  /** `use-application-dns.net`: NXDOMAIN (default) or pass through. */
  canary: 'nxdomain' | 'pass';
  policyServer?: PolicyServerLink;
  /** Intercept mode (#6, src/intercept/interceptor.ts `Interceptor`); absent in other modes. */
  interceptor?: InterceptApi;
  /** CNAME holds (issue 11 item 9, src/policy/cname-holds.ts `CnameHolds`). */
  holds?: HoldsApi;
  /** Forwarders whose EDNS Client Subnet names the client (issue 11 item 8); absent: none trusted. */
  forwarders?: Pick<TrustedForwarders, 'clientOf'>;
  /** `allow_clients` (client-acl.ts): senders it leaves out get REFUSED. Absent: everyone may ask. */
  acl?: { allows(address: string): boolean };
  /** The query log (query-log.ts), switched live; absent: never. */
  queryLog?: Pick<QueryLog, 'on' | 'write'>;
  /** Local records (local-records.ts, `hosts:`), swapped live by the daemon; absent: none. */
  local?: LocalAnswers;
}

/**
 * The split-DNS CNAME hole (issue 11 item 9): `hold` remembers, per client group, the names of
 * a protected chain after the one that matched; `decide` gives such a name, for a client of
 * that group, the decision protecting the name that brought it (null: none held).
 */
export interface HoldsApi {
  hold(decision: Decision, chain: readonly string[], chainTtls: readonly number[]): void;
  decide(clientIp: string, miss: Decision, names: readonly string[]): Decision | null;
}

/**
 * Intercept mode (#6): allocates a pool address per registered real address of `group` and
 * returns the answer rewritten to them. Throws (pool exhausted, map full, malformed) → SERVFAIL.
 */
export interface InterceptApi {
  apply(group: number, answer: Uint8Array, scan: AnswerScan): { bytes: Uint8Array };
}

export type ServfailReason = 'timeout' | 'upstream' | 'malformed_answer' | 'register' | 'unverified' | 'intercept';

/** How a query ended. `upstream`: the one asked (null: answered locally); `registered`: the addresses in the map before the answer left. */
export type Outcome =
  | { kind: 'drop'; reason: string }
  | { kind: 'refused'; query: ParsedQuery }
  | { kind: 'local-error'; rcode: number; query: ParsedQuery | null; reason: string }
  | { kind: 'canary'; query: ParsedQuery }
  | { kind: 'servfail'; query: ParsedQuery; reason: ServfailReason; detail: string; clientIp?: string; upstream?: string | null; decision?: Decision }
  | { kind: 'answer'; query: ParsedQuery; forwarded: Forwarded; decision: Decision | null; clientIp: string; upstream: string | null; registered: readonly string[] };

const NONE: readonly string[] = Object.freeze([]);

export const CANARY_NAME = 'use-application-dns.net';
/** Its question's length on the wire: a length octet per label, the root octet, type and class. */
const CANARY_QUESTION_LEN = CANARY_NAME.length + 2 + 4;

export class Pipeline {
  /** The listener-facing entry point (a `QueryHandler`). */
  readonly handle: QueryHandler;

  private splitDns: boolean;

  constructor(private readonly deps: PipelineDeps) {
    this.handle = (bytes, client) => this.run(bytes, client);
    this.splitDns = deps.upstreamNames === undefined || deps.upstreamNames.length > 1;
  }

  /** The upstream names after a reload changed them (S102 runs only when there is a choice). */
  setUpstreamNames(names: readonly string[]): void {
    this.splitDns = names.length > 1;
  }

  /**
   * A query that needs no waiting — a cache hit registered synchronously, a local answer, an
   * error answered here — runs from parse to answer in this call; one that waits (upstream, a
   * peer channel) goes on in promise callbacks. Either way the steps and their order are the same.
   */
  private run(bytes: Uint8Array, client: ClientInfo): QueryResult | Promise<QueryResult> {
    // the query log costs one property read per query while it is off
    const t0 = this.deps.queryLog?.on ? performance.now() : 0;
    let outcome: Outcome | Promise<QueryResult>;
    try {
      outcome = this.resolve(bytes, client, t0);
    } catch (err) {
      return this.failed(err, bytes, client);
    }
    // in hand: no promise (a cache hit, a local answer, an error answered here)
    return outcome instanceof Promise ? outcome : this.finish(outcome, bytes, client, t0);
  }

  private finish(outcome: Outcome, bytes: Uint8Array, client: ClientInfo, t0: number): Uint8Array | null {
    const answer = this.respond(outcome, bytes, client);
    if (t0 !== 0 && answer !== null) this.logQuery(outcome, client, t0);
    return answer;
  }

  /**
   * After a wait (the upstream, a peer channel): step 6 in the waiting promise's own callback,
   * so a query costs no promise hop between its outcome and its answer. A step that rejects (a
   * bug) answers nothing, as in `run`.
   */
  private settle(outcome: Outcome | Promise<Outcome>, bytes: Uint8Array, client: ClientInfo, t0: number): QueryResult | Promise<QueryResult> {
    return outcome instanceof Promise ? this.later(outcome, bytes, client, t0) : this.finish(outcome, bytes, client, t0);
  }

  private later(outcome: Promise<Outcome>, bytes: Uint8Array, client: ClientInfo, t0: number): Promise<QueryResult> {
    return outcome.then(
      (o) => this.finish(o, bytes, client, t0),
      (err: unknown) => this.failed(err, bytes, client),
    );
  }

  /** A bug in a step (policy, registry double…): fail closed, answer nothing. */
  private failed(err: unknown, bytes: Uint8Array, client: ClientInfo): Uint8Array | null {
    this.deps.log.error('proxy: query failed unexpectedly', { err: errorMessage(err) });
    return this.respond({ kind: 'drop', reason: 'internal' }, bytes, client);
  }

  /** Steps 4–6 for an answer that was waited for; a step that throws (a bug) answers nothing. */
  private answeredLater(query: ParsedQuery, forwarded: Forwarded, clientIp: string, asked: string | null, bytes: Uint8Array, client: ClientInfo, t0: number): QueryResult | Promise<QueryResult> {
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = this.answered(query, forwarded, clientIp, asked);
    } catch (err) {
      return this.failed(err, bytes, client);
    }
    return this.settle(outcome, bytes, client, t0);
  }

  /**
   * Steps 1–5: the outcome; or, when the upstream must be waited for, a promise of the client's
   * answer itself (steps 4–6 run in its callback, `settle`). Throws only on a bug in a step
   * (policy, registry); `run` then answers nothing.
   */
  private resolve(bytes: Uint8Array, client: ClientInfo, t0: number): Outcome | Promise<QueryResult> {
    const received = this.receive(bytes);
    const refused = this.admit(received, client);
    if (refused) return refused;
    if ('kind' in received) return received;
    const query = received;
    // the length first: the name's text is made only for a question as long as the canary's
    if (this.deps.canary === 'nxdomain' && query.question.length === CANARY_QUESTION_LEN && query.qname === CANARY_NAME) return { kind: 'canary', query };
    const clientIp = this.classify(query, client);
    const local = this.local(query);
    if (local) return this.inHand(this.answered(query, local, clientIp, null), bytes, client, t0);
    const upstream = this.preDecide(query, clientIp);
    const asked = upstream ?? this.deps.policyServer?.upstream ?? 'default';
    const sent = performance.now();
    let forwarding: Forwarded | Promise<Forwarded>;
    try {
      forwarding = this.forward(query, upstream, clientIp);
    } catch (err) {
      return { ...this.forwardFailure(query, err), clientIp, upstream: asked };
    }
    // a cache hit (never waited for) is not an upstream exchange (dnsseal_upstream_query_seconds)
    if (!(forwarding instanceof Promise)) return this.inHand(this.answered(query, forwarding, clientIp, asked), bytes, client, t0);
    return forwarding.then(
      (forwarded) => {
        if (!isCached(forwarded)) observeUpstream(this.deps.counters, (performance.now() - sent) / 1000);
        return this.answeredLater(query, forwarded, clientIp, asked, bytes, client, t0);
      },
      (err: unknown) => this.finish({ ...this.forwardFailure(query, err), clientIp, upstream: asked }, bytes, client, t0),
    );
  }

  /** An outcome in hand as it is; one that waits (a peer channel) as a promise of the answer. */
  private inHand(outcome: Outcome | Promise<Outcome>, bytes: Uint8Array, client: ClientInfo, t0: number): Outcome | Promise<QueryResult> {
    return outcome instanceof Promise ? this.later(outcome, bytes, client, t0) : outcome;
  }

  /** Steps 4–5 for an answer in hand (upstream, cache or local): decide, hold, register, confine. */
  private answered(query: ParsedQuery, forwarded: Forwarded, clientIp: string, asked: string | null): Outcome | Promise<Outcome> {
    const decision = this.decide(query, forwarded, clientIp);
    if (!decision?.channel) return { kind: 'answer', query, forwarded, decision, clientIp, upstream: asked, registered: NONE };
    this.hold(forwarded, decision);
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.register(query, forwarded, decision);
    } catch (err) {
      return { kind: 'servfail', query, reason: 'register', detail: errorMessage(err), clientIp, upstream: asked, decision };
    }
    if (waiting === undefined) return this.registered(query, forwarded, decision, clientIp, asked);
    return waiting.then(
      () => this.registered(query, forwarded, decision, clientIp, asked),
      (err: unknown): Outcome => ({ kind: 'servfail', query, reason: 'register', detail: errorMessage(err), clientIp, upstream: asked, decision }),
    );
  }

  /** After S105: the answer limited to what was registered (confine), or intercept's copy. */
  private registered(query: ParsedQuery, forwarded: Forwarded, decision: Decision, clientIp: string, asked: string | null): Outcome {
    const registered = forwarded.scan.addrs;
    const icpt = this.deps.interceptor !== undefined;
    let out: Forwarded;
    try {
      out = icpt ? this.intercept(query, forwarded, decision) : this.confine(query, forwarded);
    } catch (err) {
      return { kind: 'servfail', query, reason: icpt ? 'intercept' : 'malformed_answer', detail: errorMessage(err), clientIp, upstream: asked, decision };
    }
    return { kind: 'answer', query, forwarded: out, decision, clientIp, upstream: asked, registered };
  }

  /** S101: parse the query; malformed input ends here (FORMERR or dropped). */
  private receive(bytes: Uint8Array): ParsedQuery | Outcome {
    const parsed = parseQuery(bytes);
    if (parsed.kind === 'ok') return parsed.query;
    if (parsed.kind === 'drop') return { kind: 'drop', reason: parsed.reason };
    return { kind: 'local-error', rcode: parsed.rcode, query: parsed.query, reason: parsed.reason };
  }

  /**
   * After S101: a sender `allow_clients` leaves out gets REFUSED (or nothing, when what it sent
   * is not a query). Null: the query goes on.
   */
  private admit(received: ParsedQuery | Outcome, client: ClientInfo): Outcome | null {
    const acl = this.deps.acl;
    if (acl === undefined || acl.allows(client.address)) return null;
    if (!('kind' in received)) return { kind: 'refused', query: received };
    if (received.kind === 'local-error' && received.query) return { kind: 'refused', query: received.query };
    return { kind: 'drop', reason: 'refused' };
  }

  /**
   * After S101: the address the client is classified by (its table, its kernel group). The
   * sender's, unless the sender is a trusted forwarder naming the client in EDNS Client Subnet
   * (dnsmasq `--add-subnet=32,128`; issue 11 item 8). The option never goes upstream.
   */
  private classify(query: ParsedQuery, client: ClientInfo): string {
    return this.deps.forwarders ? this.deps.forwarders.clientOf(query, client.address) : client.address;
  }

  /**
   * Before S102: a local name (`hosts:`, local-records.ts) is answered here, and nothing goes
   * upstream; null: the name is not local. The answer still goes through S104–S106.
   */
  private local(query: ParsedQuery): Forwarded | null {
    return this.deps.local ? this.deps.local.answer(query) : null;
  }

  /** S102: the query name alone decides the upstream (split DNS); the channel waits for S104. */
  private preDecide(query: ParsedQuery, clientIp: string): string | null {
    return this.splitDns ? this.deps.policy.preDecide(clientIp, query.qname).upstream : null;
  }

  /** S103: ask the upstream (shared with identical questions in flight; TC → TCP), or the cache. */
  private forward(query: ParsedQuery, upstream: string | null, clientIp: string): Forwarded | Promise<Forwarded> {
    const ps = this.deps.policyServer;
    // Signed, never shared; a rule naming another upstream (split DNS) still goes there.
    // Gateway modes name the classified client to the server (its own ECS), never the sender's.
    if (ps && (upstream === null || upstream === ps.upstream)) {
      return this.deps.forwarder.forward(query, ps.upstream, () => ps.hooks(clientIp));
    }
    const f = this.deps.forwarder;
    return f.resolveNow ? f.resolveNow(query, upstream) : f.forward(query, upstream);
  }

  /**
   * S104: match the query name and every name of its CNAME chain: a local rule first, then a
   * policy server's verified decision, then a CNAME hold. Only an answer with addresses (on the
   * chain or stray) or a CNAME can need protection, so others skip the policy lookup.
   */
  private decide(query: ParsedQuery, forwarded: Forwarded, clientIp: string): Decision | null {
    const scan = forwarded.scan;
    if (scan.addrs.length === 0 && scan.strays === 0 && scan.chain.length === 1) return null;
    // scan.chain[0] is query.qname: the chain was followed from it.
    const local = this.deps.policy.decide(clientIp, scan.chain);
    if (local.channel) return local;
    const ps = this.deps.policyServer;
    const verified = ps && forwarded.hooks ? ps.decisionOf(forwarded.hooks) : null;
    // The server picks the channel; the kernel group stays ours (our client classification).
    const server = verified ? { ...verified, table: local.table, group: local.group } : null;
    if (server?.channel) return server;
    return this.deps.holds?.decide(clientIp, local, scan.chain) ?? server ?? local;
  }

  /**
   * After S104, for a protected answer: the CNAME targets after the name that matched stay
   * protected for the client's group for their TTL (at least min_hold), whichever upstream
   * answers for them later (the split-DNS CNAME hole, issue 11 item 9).
   */
  private hold(forwarded: Forwarded, decision: Decision): void {
    const scan = forwarded.scan;
    if (scan.chain.length > 1) this.deps.holds?.hold(decision, scan.chain, scan.chainTtls);
  }

  /**
   * S105: every address into the registry and the kernel map. Undefined: done already (the
   * registry wrote them synchronously); else a promise that resolves only when done. Throws or
   * rejects when it cannot be done.
   */
  private register(query: ParsedQuery, forwarded: Forwarded, decision: Decision): Promise<void> | undefined {
    const scan = forwarded.scan;
    if (scan.addrs.length === 0) return undefined;
    const reg: Registration = {
      group: decision.group,
      channel: decision.channel!,
      names: scan.chain,
      addrs: scan.addrs,
      ttlS: scan.minTtl,
      queryName: query.qname,
    };
    const registry = this.deps.registry;
    // A channel a policy server named is set up (strongSwan) before anything is marked for it.
    const ready = this.deps.policyServer?.channelReady;
    if (ready) return ready.call(this.deps.policyServer, decision.channel!).then(() => registry.register(reg));
    return registry.registerNow ? registry.registerNow(reg) : registry.register(reg);
  }

  /**
   * Host and gateway modes, after S105: a protected answer loses every address record that was
   * not registered — owned by a name off the CNAME chain, or in the authority or additional
   * section — so no client gets an address the kernel does not protect (issue 11 item 10). The
   * shared rewrite (`../dns/answer-rewrite.ts`, intercept's too) keeps the registered ones
   * byte for byte. A new object: `forwarded` may be shared with other queries in flight.
   */
  private confine(query: ParsedQuery, forwarded: Forwarded): Forwarded {
    if (forwarded.scan.strays === 0) return forwarded;
    const { bytes, removed } = rewriteAnswer(forwarded.bytes, { keep: new Set(forwarded.scan.addrs) });
    this.deps.counters.strayRecordsRemoved += removed;
    return { ...forwarded, bytes, scan: scanAnswer(bytes, query.question.length, query.qname) };
  }

  /**
   * Intercept mode, after S105 (the real addresses are in the kernel map): the client's copy
   * names pool addresses instead (the NAT maps them back). A new object: `forwarded` may be
   * shared with other queries in flight, possibly from other client groups.
   */
  private intercept(query: ParsedQuery, forwarded: Forwarded, decision: Decision): Forwarded {
    const { bytes } = this.deps.interceptor!.apply(decision.group, forwarded.bytes, forwarded.scan);
    return { ...forwarded, bytes, scan: scanAnswer(bytes, query.question.length, query.qname) };
  }

  /** S106: the only place client bytes are made. Counts every outcome. */
  private respond(outcome: Outcome, bytes: Uint8Array, client: ClientInfo): Uint8Array | null {
    const c = this.deps.counters;
    switch (outcome.kind) {
      case 'answer': {
        c.queries[outcome.decision?.channel ? 'protected' : 'answer']++;
        if (this.deps.log.enabled('debug')) this.logDecision(outcome.query, outcome.decision, outcome.clientIp, client);
        const limit = client.transport === 'udp' ? udpLimit(outcome.query) : null;
        const f = outcome.forwarded;
        // a hit as the cache handed it out: one copy from the stored answer (the same bytes)
        return f instanceof CachedHit ? f.relay(outcome.query, limit) : relayAnswer(f.bytes, f.scan, outcome.query, limit);
      }
      case 'drop':
        c.queries.drop++;
        return null;
      case 'refused':
        c.queries.refused++;
        return buildErrorResponse(outcome.query, RCODE_REFUSED);
      case 'local-error':
        c.queries[outcome.rcode === RCODE_FORMERR ? 'formerr' : 'error']++;
        return outcome.query ? buildErrorResponse(outcome.query, outcome.rcode) : buildHeaderOnlyResponse(bytes, outcome.rcode);
      case 'canary':
        c.queries.canary++;
        return buildErrorResponse(outcome.query, RCODE_NXDOMAIN);
      case 'servfail':
        c.queries.servfail++;
        c.servfail[outcome.reason]++;
        if (this.deps.log.enabled('debug') || outcome.reason === 'register' || outcome.reason === 'intercept') {
          this.deps.log[outcome.reason === 'register' || outcome.reason === 'intercept' ? 'warn' : 'debug']('proxy: answering SERVFAIL', {
            reason: outcome.reason,
            detail: outcome.detail,
          });
        }
        return buildErrorResponse(outcome.query, RCODE_SERVFAIL);
    }
  }

  /** One query log line (query-log.ts) for an answered query. */
  private logQuery(o: Outcome, client: ClientInfo, t0: number): void {
    if (o.kind === 'drop') return;
    const query = o.query;
    if (query === null) return;
    const clientIp = o.kind === 'answer' || o.kind === 'servfail' ? (o.clientIp ?? client.address) : client.address;
    const rcode =
      o.kind === 'answer' ? o.forwarded.bytes[3]! & 0x0f : o.kind === 'servfail' ? RCODE_SERVFAIL : o.kind === 'refused' ? RCODE_REFUSED : o.kind === 'canary' ? RCODE_NXDOMAIN : o.rcode;
    this.deps.queryLog!.write({
      client: clientIp,
      ...(clientIp !== client.address ? { via: client.address } : {}),
      transport: client.transport,
      name: query.qname,
      type: query.qtype,
      rcode,
      ...(o.kind === 'servfail' || o.kind === 'local-error' ? { reason: o.reason } : o.kind === 'refused' ? { reason: 'allow_clients' } : {}),
      upstream: o.kind === 'answer' || o.kind === 'servfail' ? (o.upstream ?? null) : null,
      latencyMs: performance.now() - t0,
      cached: o.kind === 'answer' && isCached(o.forwarded),
      decision: o.kind === 'answer' || o.kind === 'servfail' ? (o.decision ?? null) : null,
      addrs: o.kind === 'answer' ? o.registered : NONE,
    });
  }

  /** One debug line per decision (names and addresses are fine in logs, never in metric labels). */
  private logDecision(query: ParsedQuery, decision: Decision | null | undefined, clientIp: string, client: ClientInfo): void {
    this.deps.log.debug('proxy: decision', {
      name: query.qname,
      client: clientIp,
      ...(clientIp !== client.address ? { via: client.address } : {}),
      table: decision?.table ?? null,
      rule: decision?.rule?.condition.pattern ?? null,
      matched: decision?.matchedName ?? null,
      heldBy: decision?.heldBy ?? null,
      channel: decision?.channel?.name ?? null,
    });
  }

  private forwardFailure(query: ParsedQuery, err: unknown): Extract<Outcome, { kind: 'servfail' }> {
    if (err instanceof UpstreamError) {
      const reason: ServfailReason =
        err.reason === 'timeout' ? 'timeout' : err.reason === 'malformed' ? 'malformed_answer' : err.reason === 'unverified' ? 'unverified' : 'upstream';
      return { kind: 'servfail', query, reason, detail: err.message };
    }
    return { kind: 'servfail', query, reason: 'upstream', detail: errorMessage(err) };
  }
}
