/**
 * Rule files: large rule sets (block lists, partner lists with 10^5–10^6 names) kept out of the
 * YAML, one rule per line, inserted into a table where the `- rules_file: PATH` item stands:
 *
 *   # PATTERN            [CHANNEL [UPSTREAM]]
 *   *.corp.example        hub
 *   git.partner.example   partner  partner-dns
 *   *.lab.example                        # channel from the item's `channel:`
 *
 * Errors name `file:line`. A plain line scan, so a million rules load in well under a second
 * (YAML parsing alone would take several).
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import { parseCondition } from '../policy/condition.ts';
import type { DraftRule } from './draft.ts';

export interface RulesFileDefaults {
  channel?: string;
  upstream?: string;
}

const MAX_REPORTED = 20;

export function parseRulesFile(text: string, source: string, defaults: RulesFileDefaults): DraftRule[] {
  const rules: DraftRule[] = [];
  const errors: ConfigError[] = [];
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    let line = text.slice(start, end);
    start = end + 1;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === '') continue;
    const fields = line.split(/\s+/);
    const where = `${source}:${lineNo}`;
    try {
      if (fields.length > 3) throw new Error(`too many fields: a line is PATTERN [CHANNEL [UPSTREAM]]`);
      const channel = fields[1] ?? defaults.channel;
      if (channel === undefined) throw new Error(`"${fields[0]}" has no channel (give one on the line or "channel:" on the rules_file item)`);
      const upstream = fields[2] ?? defaults.upstream;
      const rule: DraftRule = { condition: parseCondition(fields[0]!), channel, where: { match: where, channel: where, upstream: where } };
      if (upstream !== undefined) rule.upstream = upstream;
      rules.push(rule);
    } catch (err) {
      errors.push(new ConfigError(where, errorMessage(err)));
      if (errors.length >= MAX_REPORTED) break;
    }
  }
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) {
    const more = errors.length >= MAX_REPORTED ? `\n${source}: (stopped after ${MAX_REPORTED} problems)` : '';
    throw new ConfigError('', errors.map((e) => e.message).join('\n') + more);
  }
  return rules;
}
