/**
 * `dnsseal policy-server`, the core: a DNS server that answers normally and adds, for the
 * asking client, the channel its table assigns (the patent's second embodiment, figure 6).
 * It is a `QueryHandler`, so the proxy's UDP and TCP listeners serve it unchanged.
 *
 *   receive → admit → authenticate → classify → resolve → decide → respond
 *
 * - admit: a sender `allow_clients` leaves out gets REFUSED, as the proxy does (the same
 *   access list, src/proxy/client-acl.ts); no MAC is checked and nothing forwarded for it.
 * - authenticate: a query with a TSIG must verify (tsig.ts); failures are answered as RFC 8945
 *   §5.3 says (NOTAUTH + TSIG error; BADTIME signed) and go no further.
 * - classify: the client is the query's source address, or the address of its EDNS Client
 *   Subnet option when the query is signed by a key trusted to speak for its clients.
 * - resolve: from the zone when it covers the name, else from the upstream the client's table
 *   picks for the name (a rule's `upstream:`, a forwarding rule; else `default`), else REFUSED.
 * - decide: the client's table (Policy, the same matcher as local rules) over the CNAME chain.
 * - respond: the answer, the policy option (policy-option.ts) when the client sent EDNS, and a
 *   TSIG signature when the query was signed.
 *
 * Reload swaps one immutable `PolicyServerState`; a query keeps the state it started with, so
 * a reload never drops or mixes queries.
 */
import { scanAnswer, type AnswerScan } from '../dns/answer-scan.ts';
import { annotationFromDecision, encodePolicyOption, ednsOptions, setPolicyOption, type NodeKind } from '../dns/policy-option.ts';
import { parseQuery, type ParsedQuery } from '../dns/query.ts';
import { buildErrorResponse, buildHeaderOnlyResponse, relayAnswer, udpLimit } from '../dns/response.ts';
import { canonicalName, tsigSign, tsigVerify, TsigRcode, type Keyring, type TsigKey, type TsigVerifyResult } from '../dns/tsig.ts';
import { RCODE_FORMERR, RCODE_REFUSED, RCODE_SERVFAIL } from '../dns/wire.ts';
import type { Metrics, Counter } from '../ops/metrics.ts';
import type { Decision } from '../policy/types.ts';
import type { ClientInfo, QueryHandler } from '../proxy/handler.ts';
import type { Clock } from '../util/clock.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { OPTION_ECS, decodeClientSubnet } from './client-subnet.ts';
import type { Zone } from './zone.ts';

export const RCODE_NOTAUTH = 9;

/** What the server needs of the policy (src/policy/policy.ts `Policy`). */
export interface PolicyDecider {
  decide(clientIp: string, names: string[]): Decision;
  /** The upstream the query name's rules pick (a rule's `upstream:`, a forwarding rule; null: `default`), as the proxy's S102. */
  preDecide(clientIp: string, qname: string): Pick<Decision, 'upstream'>;
}

/** What the server needs of the forwarder (src/proxy/forwarder.ts `Forwarder`). */
export interface Resolver {
  forward(query: ParsedQuery, upstream: string | null): Promise<{ bytes: Uint8Array; scan: AnswerScan }>;
}

/** Everything a reload replaces, swapped as one object. */
export interface PolicyServerState {
  /** `allow_clients` (src/proxy/client-acl.ts `ClientAcl`): other senders get REFUSED; absent: everyone. */
  acl?: { allows(address: string): boolean };
  policy: PolicyDecider;
  keyring: Keyring;
  /** Key names whose signed queries may name their client with EDNS Client Subnet. */
  trustedKeys: ReadonlySet<string>;
  zone: Zone | null;
  resolver: Resolver | null;
  /** Unsigned queries: answered (default) or REFUSED. */
  requireTsig: boolean;
  /** Annotate answers to signed queries only (default), or every EDNS answer. */
  annotate: 'signed' | 'all';
  fudgeS: number;
}

export interface PolicyServerDeps {
  clock: Clock;
  log: Logger;
  metrics?: Metrics;
}

export type ServerOutcome =
  | 'answer'
  | 'annotated'
  | 'refused'
  | 'servfail'
  | 'formerr'
  | 'notauth'
  | 'drop';

interface Signer {
  key: TsigKey;
  requestMac: Uint8Array;
}

export class PolicyServer {
  readonly handle: QueryHandler;
  private state: PolicyServerState;
  private readonly queries?: Counter;
  private readonly tsigResults?: Counter;

  constructor(
    initial: PolicyServerState,
    private readonly deps: PolicyServerDeps,
  ) {
    this.state = initial;
    this.handle = (bytes, client) => this.run(bytes, client);
    this.queries = deps.metrics?.counter('dnsseal_policy_server_queries_total', 'Policy server queries by outcome');
    this.tsigResults = deps.metrics?.counter('dnsseal_policy_server_tsig_total', 'TSIG verification of queries by result');
  }

  /** Atomically replaces the state; queries already running finish with the old one. */
  swap(next: PolicyServerState): PolicyServerState {
    const old = this.state;
    this.state = next;
    return old;
  }

  current(): PolicyServerState {
    return this.state;
  }

  private count(outcome: ServerOutcome): void {
    this.queries?.inc({ outcome });
  }

  private async run(bytes: Uint8Array, client: ClientInfo): Promise<Uint8Array | null> {
    const st = this.state;
    // receive
    const parsed = parseQuery(bytes);
    if (parsed.kind === 'drop') {
      this.count('drop');
      return null;
    }
    // admit: nothing (not even FORMERR) when no question could be read
    if (st.acl && !st.acl.allows(client.address)) {
      const q = parsed.query;
      this.count(q ? 'refused' : 'drop');
      return q ? buildErrorResponse(q, RCODE_REFUSED) : null;
    }
    if (parsed.kind === 'error') {
      this.count('formerr');
      return parsed.query ? buildErrorResponse(parsed.query, parsed.rcode) : buildHeaderOnlyResponse(bytes, parsed.rcode);
    }
    const query = parsed.query;

    // authenticate
    const v = tsigVerify(bytes, { keyring: st.keyring, clock: this.deps.clock, maxFudgeS: st.fudgeS });
    this.tsigResults?.inc({ result: v.ok ? 'ok' : v.code });
    if (!v.ok && v.code !== 'tsig_missing') return this.tsigFailure(query, v, st);
    const signer: Signer | null = v.ok ? { key: v.key, requestMac: v.tsig.mac } : null;
    if (!signer && st.requireTsig) {
      this.count('refused');
      return buildErrorResponse(query, RCODE_REFUSED);
    }
    const finish = (wire: Uint8Array) => (signer ? tsigSign(wire, { key: signer.key, clock: this.deps.clock, requestMac: signer.requestMac, fudgeS: st.fudgeS }).wire : wire);

    // classify
    let clientIp = client.address;
    let node: NodeKind = 'host';
    if (signer && st.trustedKeys.has(signer.key.name)) {
      try {
        const ecs = ednsOptions(bytes).find((o) => o.code === OPTION_ECS);
        if (ecs) {
          clientIp = decodeClientSubnet(ecs.data).address;
          node = 'gateway';
        }
      } catch (err) {
        this.deps.log.debug('policy-server: bad client subnet', { err: errorMessage(err) });
        this.count('formerr');
        return finish(buildErrorResponse(query, RCODE_FORMERR));
      }
    }

    // resolve
    let answer: Uint8Array;
    let scan: AnswerScan;
    try {
      if (st.zone?.covers(query.qname)) {
        answer = st.zone.answer(query);
        scan = scanAnswer(answer, query.question.length, query.qname);
      } else if (st.resolver) {
        ({ bytes: answer, scan } = await st.resolver.forward(query, st.policy.preDecide(clientIp, query.qname).upstream));
      } else {
        this.count('refused');
        return finish(buildErrorResponse(query, RCODE_REFUSED));
      }
    } catch (err) {
      this.deps.log.debug('policy-server: resolving failed', { err: errorMessage(err) });
      this.count('servfail');
      return finish(buildErrorResponse(query, RCODE_SERVFAIL));
    }

    // decide
    const annotate = query.edns !== null && (signer !== null || st.annotate === 'all');
    const decision = annotate ? st.policy.decide(clientIp, scan.chain) : null;

    // respond
    try {
      const annotation = decision ? annotationFromDecision(decision, node) : null;
      let reserve = 0;
      if (annotation) reserve += 4 + encodePolicyOption(annotation).length;
      if (signer) reserve += canonicalName(signer.key.name).length + 71; // TSIG RR with a 32-octet MAC
      const limit = client.transport === 'udp' ? udpLimit(query) - reserve : null;
      const copy = relayAnswer(answer, scan, query, limit);
      const { wire, added } = setPolicyOption(copy, annotation);
      this.count(added ? 'annotated' : 'answer');
      return finish(wire);
    } catch (err) {
      this.deps.log.warn('policy-server: could not build the answer', { err: errorMessage(err) });
      this.count('servfail');
      return finish(buildErrorResponse(query, RCODE_SERVFAIL));
    }
  }

  /** RFC 8945 §5.3: how a query whose TSIG failed is answered. */
  private tsigFailure(query: ParsedQuery, v: Extract<TsigVerifyResult, { ok: false }>, st: PolicyServerState): Uint8Array {
    this.deps.log.debug('policy-server: query TSIG refused', { code: v.code, key: v.tsig?.keyName });
    const base = buildErrorResponse(query, RCODE_NOTAUTH);
    const clock = this.deps.clock;
    switch (v.code) {
      case 'tsig_badkey':
      case 'tsig_badsig':
      case 'tsig_badtrunc': {
        // Unsigned: we cannot (unknown key) or must not (bad MAC) sign. The TSIG echoes the key name.
        this.count('notauth');
        const echo: TsigKey = { name: v.tsig!.keyName, algorithm: 'hmac-sha256', secret: new Uint8Array(0) };
        return tsigSign(base, { key: echo, clock, error: v.rcode, emptyMac: true, fudgeS: st.fudgeS }).wire;
      }
      case 'tsig_badtime': {
        // Signed, with our time in Other Data so the client can see the skew.
        this.count('notauth');
        const now = Math.floor(clock.nowMs() / 1000);
        const other = Uint8Array.from([0, 0, 0, 0, 0, 0]);
        const hi = Math.floor(now / 2 ** 32);
        other.set([(hi >> 8) & 0xff, hi & 0xff, (now >>> 24) & 0xff, (now >>> 16) & 0xff, (now >>> 8) & 0xff, now & 0xff]);
        return tsigSign(base, { key: v.key!, clock, requestMac: v.tsig!.mac, error: TsigRcode.BADTIME, otherData: other, fudgeS: st.fudgeS }).wire;
      }
      default:
        this.count('formerr');
        return buildErrorResponse(query, RCODE_FORMERR);
    }
  }
}
