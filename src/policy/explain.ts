/**
 * `dnsseal explain`: what the policy does with one name for one client, as data. The JSON
 * shape is a stable interface (scripts use it):
 *   {"name", "client", "table", "rule": {"pattern","index","kind"[,"source"][,"forwarding"]} | null,
 *    "channel": {…} | null, "upstream"[, "upstreamRule": {…}]}
 * `rule` is the rule that decides protection (the first with a channel that matches), else the
 * forwarding rule that picks the upstream (`"forwarding": true`, `channel` null), else null.
 * `upstreamRule` is the rule that picks the upstream when it is another one than `rule` (a
 * forwarding rule above the protecting one, or a protecting rule naming another upstream).
 * Plus `"heldBy": {"name", "expiresInS"}` when the name is protected through a CNAME hold of
 * the running daemon (no rule of its own matches it; `name` is the protected name whose answer
 * named it as a CNAME target; `rule` and `channel` are that name's).
 */
import type { ChannelSpec, Decision, Rule } from './types.ts';
import type { Policy } from './policy.ts';
import type { CnameHolds } from './cname-holds.ts';
import { normalizeName } from './name.ts';

export interface RuleRef {
  pattern: string;
  index: number;
  kind: string;
  source?: string;
  /** A forwarding rule: an upstream, no channel. */
  forwarding?: true;
}

export interface Explanation {
  name: string;
  client: string | null;
  table: string;
  rule: RuleRef | null;
  channel: (ChannelSpec & { peerIdentity: string }) | null;
  /** Upstream name the query goes to (`default` unless the first matching rule names one). */
  upstream: string;
  /** The rule that picks the upstream, when it is not `rule`. */
  upstreamRule?: RuleRef;
  matchedName?: string;
  /** Protected through a CNAME hold (issue 11 item 9): which name brought it, for how long still. */
  heldBy?: { name: string; expiresInS: number };
}

function ruleRef(r: Rule): RuleRef {
  const out: RuleRef = { pattern: r.condition.pattern, index: r.index, kind: r.condition.kind };
  if (r.source) out.source = r.source;
  if (r.channel === undefined) out.forwarding = true;
  return out;
}

/** `holds`: the running daemon's CNAME holds (absent: the rules alone, as `explain` offline). */
export function explain(policy: Policy, name: string, client: string | null | undefined, holds?: CnameHolds): Explanation {
  const canonical = normalizeName(name) ?? name;
  const pre = policy.preDecide(client ?? '', canonical);
  let d: Decision = policy.decide(client ?? '', [canonical]);
  let heldBy: Explanation['heldBy'];
  const held = !d.channel && holds ? holds.decide(client ?? '', d, [canonical]) : null;
  if (held) {
    const h = holds!.find(d.group, canonical)!;
    d = held;
    heldBy = { name: h.by, expiresInS: holds!.remainingS(h) };
  }
  // protection by S104's rule; without one, the forwarding rule that picked the upstream
  const shown = d.rule ?? pre.rule;
  const out: Explanation = {
    name: canonical,
    client: client ?? null,
    table: d.table,
    rule: shown ? ruleRef(shown) : null,
    channel: null,
    upstream: pre.upstream ?? 'default',
  };
  if (pre.rule && shown && pre.rule.index !== shown.index) out.upstreamRule = ruleRef(pre.rule);
  if (d.channel) {
    // the identity the peer will have to prove for this very name (resolves %name)
    out.channel = { ...d.channel, peerIdentity: d.channel.identity === '%name' ? canonical : d.channel.identity };
  }
  if (heldBy) out.heldBy = heldBy;
  return out;
}
