/**
 * `dnsseal explain`: what the policy does with one name for one client, as data. The JSON
 * shape is a stable interface (scripts use it):
 *   {"name", "client", "table", "rule": {"pattern","index"} | null, "channel": {…} | null, "upstream"}
 * plus `"heldBy": {"name", "expiresInS"}` when the name is protected through a CNAME hold of
 * the running daemon (no rule of its own matches it; `name` is the protected name whose answer
 * named it as a CNAME target; `rule` and `channel` are that name's).
 */
import type { ChannelSpec, Decision } from './types.ts';
import type { Policy } from './policy.ts';
import type { CnameHolds } from './cname-holds.ts';
import { normalizeName } from './name.ts';

export interface Explanation {
  name: string;
  client: string | null;
  table: string;
  rule: { pattern: string; index: number; kind: string; source?: string } | null;
  channel: (ChannelSpec & { peerIdentity: string }) | null;
  /** Upstream name the query goes to (`default` unless the rule names one). */
  upstream: string;
  matchedName?: string;
  /** Protected through a CNAME hold (issue 11 item 9): which name brought it, for how long still. */
  heldBy?: { name: string; expiresInS: number };
}

/** `holds`: the running daemon's CNAME holds (absent: the rules alone, as `explain` offline). */
export function explain(policy: Policy, name: string, client: string | null | undefined, holds?: CnameHolds): Explanation {
  const canonical = normalizeName(name) ?? name;
  let d: Decision = policy.decide(client ?? '', [canonical]);
  let heldBy: Explanation['heldBy'];
  const held = !d.channel && holds ? holds.decide(client ?? '', d, [canonical]) : null;
  if (held) {
    const h = holds!.find(d.group, canonical)!;
    d = held;
    heldBy = { name: h.by, expiresInS: holds!.remainingS(h) };
  }
  const out: Explanation = {
    name: canonical,
    client: client ?? null,
    table: d.table,
    rule: null,
    channel: null,
    upstream: d.upstream ?? 'default',
  };
  if (d.rule) {
    out.rule = { pattern: d.rule.condition.pattern, index: d.rule.index, kind: d.rule.condition.kind };
    if (d.rule.source) out.rule.source = d.rule.source;
  }
  if (d.channel) {
    // the identity the peer will have to prove for this very name (resolves %name)
    out.channel = { ...d.channel, peerIdentity: d.channel.identity === '%name' ? canonical : d.channel.identity };
  }
  if (heldBy) out.heldBy = heldBy;
  return out;
}
