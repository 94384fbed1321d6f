/**
 * The proxy's side of a policy-server upstream (#5): sign the query, verify the answer, and
 * turn a verified annotation into a `Decision` the pipeline registers exactly like a local
 * rule match. Nothing here touches sockets; the pipeline calls these around `forward`.
 *
 *   const signed = signQuery(upstreamQuery, ctx);            // before sending
 *   const v = verifyResponse(answer, signed.mac, ctx);         // on the answer
 *   if (!v.ok) → never use it for policy; SERVFAIL by default (fail closed)
 *   else v.decision (null = server says no protection), v.unsigned = answer without TSIG
 *
 * An annotation is used only when the TSIG verified — key known and the one we signed with,
 * MAC correct over the request MAC, time within fudge, TSIG the last record with nothing after
 * it. A missing annotation in a verified answer means "no decision" (e.g. no OPT was sent).
 */
import { decodePolicyOption, setEdnsOption, type PolicyAnnotation, type PolicyChannel } from '../dns/policy-option.ts';
import { parseIP } from '../util/ip.ts';
import { OPTION_ECS, encodeClientSubnet } from './client-subnet.ts';
import { stripTsig, tsigSign, tsigVerify, type Keyring, type Signed, type TsigFailureCode } from '../dns/tsig.ts';
import { checkEsp } from '../policy/esp.ts';
import { fnv1a32 } from '../policy/group.ts';
import { channelMark, type ChannelSpec, type Decision } from '../policy/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';

export interface PolicyClientContext {
  keyring: Keyring;
  /** The key configured for the policy-server upstream (`UpstreamSpec.tsigKey`). */
  keyName: string;
  clock: Clock;
  /** Maps server channels to local ChannelSpecs (ids/marks). One per daemon. */
  channels: ServerChannels;
  fudgeS?: number;
}

/** Signs the exact bytes about to be sent (after the upstream ID is set). */
export function signQuery(query: Uint8Array, ctx: Pick<PolicyClientContext, 'keyring' | 'keyName' | 'clock' | 'fudgeS'>): Signed {
  const key = ctx.keyring.get(ctx.keyName);
  if (!key) throw new DnssealError('tsig', 'tsig_badkey', `no TSIG key named ${ctx.keyName} is configured`);
  return tsigSign(query, { key, clock: ctx.clock, fudgeS: ctx.fudgeS });
}

export type PolicyVerdict =
  | {
      ok: true;
      /** The answer without its TSIG (ARCOUNT fixed): what the pipeline relays. */
      unsigned: Uint8Array;
      annotation: PolicyAnnotation | null;
      /** null when the answer carried no annotation; `channel: null` when it says "no protection". */
      decision: Decision | null;
    }
  | { ok: false; code: TsigFailureCode | 'policy_option_invalid' | 'policy_channel_refused'; message: string };

/** Verifies a policy server's answer to the query whose MAC is `requestMac`. Never throws. */
export function verifyResponse(answer: Uint8Array, requestMac: Uint8Array, ctx: PolicyClientContext): PolicyVerdict {
  const v = tsigVerify(answer, { keyring: ctx.keyring, clock: ctx.clock, requestMac, expectKeyName: ctx.keyName, maxFudgeS: ctx.fudgeS });
  if (!v.ok) return { ok: false, code: v.code, message: v.message };
  let annotation: PolicyAnnotation | null;
  let unsigned: Uint8Array;
  try {
    unsigned = stripTsig(answer);
    annotation = decodePolicyOption(unsigned);
  } catch (err) {
    return { ok: false, code: 'policy_option_invalid', message: errorMessage(err) };
  }
  if (!annotation) return { ok: true, unsigned, annotation: null, decision: null };
  try {
    return { ok: true, unsigned, annotation, decision: decisionFromAnnotation(annotation, ctx.channels) };
  } catch (err) {
    return { ok: false, code: 'policy_channel_refused', message: errorMessage(err) };
  }
}

/**
 * One exchange with a policy server, as hooks for an upstream transport: `sign` the exact
 * bytes about to be sent (after the random ID is set), then offer every answer that matches
 * ID and question to `accept`. A false `accept` means "not the server's answer" — the UDP
 * upstream keeps waiting (a forged or damaged answer must not end the exchange, just as a
 * wrong ID does not); TCP gives up. After a true `accept`, `verdict` holds the decision.
 */
export class PolicyExchange {
  private mac: Uint8Array | null = null;
  verdict: Extract<PolicyVerdict, { ok: true }> | null = null;
  /** The last refusal, for logs and metrics. */
  refused: Extract<PolicyVerdict, { ok: false }> | null = null;

  /**
   * @param clientSubnet a gateway speaking for a LAN client names it (EDNS Client Subnet, /32 or
   *   /128) so the server applies that client's table; the server honours it only for keys it
   *   trusts to speak for their clients.
   */
  constructor(
    private readonly ctx: PolicyClientContext,
    private readonly clientSubnet?: string,
  ) {}

  sign(wire: Uint8Array): Uint8Array {
    if (this.clientSubnet) {
      const addr = parseIP(this.clientSubnet);
      if (!addr) throw new DnssealError('policy-server', 'ecs_invalid', `client address ${this.clientSubnet} is not an IP address`);
      wire = setEdnsOption(wire, OPTION_ECS, encodeClientSubnet(addr, addr.length * 8)).wire;
    }
    const signed = signQuery(wire, this.ctx);
    this.mac = signed.mac;
    return signed.wire;
  }

  accept(answer: Uint8Array): boolean {
    if (!this.mac) return false;
    const v = verifyResponse(answer, this.mac, this.ctx);
    if (v.ok) this.verdict = v;
    else this.refused = v;
    return v.ok;
  }
}

/**
 * What the proxy pipeline needs to use a policy-server upstream (its `PolicyServerLink`):
 * fresh signing/verifying hooks per attempt, and the verified decision of the hooks that
 * produced the answer. Structural, so this module does not depend on the pipeline.
 */
export function policyServerLink(ctx: PolicyClientContext, upstream: string, opts: { sendClientSubnet?: boolean } = {}) {
  return {
    upstream,
    /** Gateway/intercept modes pass `sendClientSubnet` so each LAN client gets its own table. */
    hooks: (clientIp: string) => new PolicyExchange(ctx, opts.sendClientSubnet ? clientIp : undefined),
    decisionOf: (hooks: unknown): Decision | null => (hooks instanceof PolicyExchange ? (hooks.verdict?.decision ?? null) : null),
    /** Awaited before registering under `channel`: a server channel new to us is set up first. */
    channelReady: (channel: ChannelSpec): Promise<void> => ctx.channels.ready(channel),
  };
}

export function decisionFromAnnotation(a: PolicyAnnotation, channels: ServerChannels): Decision {
  return { table: a.table, group: a.group, rule: null, channel: a.channel ? channels.resolve(a.channel) : null, upstream: null };
}

/** Lowest id of a server-defined channel; local channels use 1..N in config order. */
export const SERVER_CHANNEL_BASE = 0x8000;
/** How many ids server channels may use: 0x8000..0xfffe (the mark keeps 16 bits of id). */
export const SERVER_CHANNEL_SPAN = 0x7fff;

/** The canonical text of a server channel: what its id is derived from. */
export function serverChannelKey(c: PolicyChannel): string {
  return JSON.stringify([c.name, c.kind, c.identity, c.esp, c.gateway ?? null]);
}

/**
 * The id a server channel gets: 32768 + (FNV-1a 32 of its canonical text mod 32767), so the same
 * channel has the same id (and mark) in every run of the daemon. That matters because pinned map
 * entries outlive the daemon: an entry adopted after a restart names its channel by id, and when
 * the server names that channel again the id must mean the same thing.
 *
 * Collisions (two distinct channels on one hash) are resolved by probing upward, wrapping inside
 * the range: the first one seen keeps the hashed id. Only the colliding channels then depend on
 * first-seen order — with n channels the chance that any two collide is about n²/65534 (under
 * 0.2 % for 10) — and a swapped pair after a restart still fails closed (an adopted entry under
 * the other channel's mark is held by that channel's SA, never sent in clear).
 */
export function serverChannelId(key: string, taken: (id: number) => boolean): number | null {
  const start = fnv1a32(key) % SERVER_CHANNEL_SPAN;
  for (let i = 0; i < SERVER_CHANNEL_SPAN; i++) {
    const id = SERVER_CHANNEL_BASE + ((start + i) % SERVER_CHANNEL_SPAN);
    if (!taken(id)) return id;
  }
  return null;
}

/**
 * Server channels become local ChannelSpecs, one per distinct (name, kind, identity, esp,
 * gateway), with ids from `serverChannelId` (deterministic, 32768..65534). ESP is re-checked
 * here (AEAD only): a server cannot talk a proxy into 3DES.
 */
export class ServerChannels {
  private readonly byKey = new Map<string, ChannelSpec>();
  private readonly ids = new Set<number>();
  /** The specs handed out (by identity: a local channel of the same name is not one). */
  private readonly specs = new Set<ChannelSpec>();

  /**
   * @param onNew called (synchronously, before the decision is registered) for each channel
   *   seen for the first time: the daemon adds it to the registry's and data path's tables.
   * @param prepare makes a server channel usable outside the tables (the daemon: load its
   *   tunnel connection into strongSwan); awaited by `ready` before each registration under a
   *   server channel. Must be idempotent and cheap once done; a rejection means SERVFAIL and
   *   the next query tries again.
   */
  constructor(
    private readonly onNew?: (spec: ChannelSpec) => void,
    private readonly prepare?: (spec: ChannelSpec) => Promise<void>,
  ) {}

  resolve(c: PolicyChannel): ChannelSpec {
    const k = serverChannelKey(c);
    const known = this.byKey.get(k);
    if (known) return known;
    const why = checkEsp(c.esp);
    if (why) throw new DnssealError('policy-server', 'policy_channel_refused', `server channel ${c.name}: esp "${c.esp}" refused: ${why}`);
    if (c.kind === 'tunnel' && !c.gateway) throw new DnssealError('policy-server', 'policy_channel_refused', `server channel ${c.name}: tunnel without a gateway`);
    const id = serverChannelId(k, (n) => this.ids.has(n));
    if (id === null) throw new DnssealError('policy-server', 'policy_channel_refused', `too many distinct server channels (${SERVER_CHANNEL_SPAN})`);
    const spec: ChannelSpec = {
      name: `server:${c.name}`,
      id,
      mark: channelMark(id),
      protocol: 'ipsec',
      kind: c.kind,
      identity: c.identity,
      esp: c.esp,
      ...(c.kind === 'tunnel' ? { gateway: c.gateway } : {}),
    };
    this.byKey.set(k, spec);
    this.ids.add(id);
    this.specs.add(spec);
    this.onNew?.(spec);
    return spec;
  }

  /**
   * Resolves when `spec` can carry traffic: for a server channel, once `prepare` did its work;
   * for any other channel (local ones) at once. The pipeline awaits it before registering.
   */
  ready(spec: ChannelSpec): Promise<void> {
    if (!this.prepare || !this.specs.has(spec)) return Promise.resolve();
    return this.prepare(spec);
  }

  list(): ChannelSpec[] {
    return [...this.byKey.values()];
  }
}
