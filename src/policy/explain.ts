/**
 * `dnsseal explain`: what the policy does with one name for one client, as data. The JSON
 * shape is a stable interface (scripts use it):
 *   {"name", "client", "table", "rule": {"pattern","index"} | null, "channel": {…} | null, "upstream"}
 */
import type { ChannelSpec } from './types.ts';
import type { Policy } from './policy.ts';
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
}

export function explain(policy: Policy, name: string, client: string | null | undefined): Explanation {
  const canonical = normalizeName(name) ?? name;
  const d = policy.decide(client ?? '', [canonical]);
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
  return out;
}
