/**
 * Rule files: large rule sets (block lists, partner lists with 10^5–10^6 names) kept out of the
 * YAML, one rule per line, inserted into a table where the `- rules_file: PATH` item stands:
 *
 *   # PATTERN            [CHANNEL [UPSTREAM]]
 *   *.corp.example        hub
 *   git.partner.example   partner  partner-dns
 *   *.lab.example                        # channel from the item's `channel:`
 *
 * Errors name `file:line`. A plain scan of the text into packed rules (src/policy/packed-rules.ts:
 * no objects per rule), so a million rules load in well under a second and take about 100 bytes
 * each (YAML parsing alone would take several seconds).
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import { kindAt, parseCondition, plainKindAt } from '../policy/condition.ts';
import { PackedRulesBuilder, type PackedRules } from '../policy/packed-rules.ts';

export interface RulesFileDefaults {
  channel?: string;
  upstream?: string;
}

const MAX_REPORTED = 20;

/** Space, tab, carriage return: what separates fields. */
const isBlank = (c: number) => c === 32 || c === 9 || c === 13;

export function parseRulesFile(text: string, source: string, defaults: RulesFileDefaults): PackedRules {
  let lines = 1;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
  const out = new PackedRulesBuilder(source, text, lines);
  const errors: ConfigError[] = [];
  const fields: number[] = []; // start, end pairs of the line's fields
  let lineNo = 0;
  let pos = 0;
  while (pos <= text.length) {
    lineNo++;
    fields.length = 0;
    // one line: its fields up to a `#` or the end of the line
    let i = pos;
    let comment = false;
    for (;;) {
      const c = i < text.length ? text.charCodeAt(i) : 10;
      if (c === 10) break;
      if (c === 35) comment = true;
      if (!comment && !isBlank(c)) {
        const s = i;
        while (i < text.length) {
          const d = text.charCodeAt(i);
          if (d === 10 || d === 35 || isBlank(d)) break;
          i++;
        }
        fields.push(s, i);
        continue;
      }
      i++;
    }
    pos = i + 1;
    if (fields.length === 0) continue;
    const where = () => `${source}:${lineNo}`;
    try {
      const field = (k: number) => (fields.length > 2 * k ? text.slice(fields[2 * k]!, fields[2 * k + 1]!) : undefined);
      if (fields.length > 6) throw new Error(`too many fields: a line is PATTERN [CHANNEL [UPSTREAM]]`);
      const start = fields[0]!;
      const len = fields[1]! - start;
      const channel = field(1) ?? defaults.channel;
      if (channel === undefined) throw new Error(`"${field(0)}" has no channel (give one on the line or "channel:" on the rules_file item)`);
      const upstream = field(2) ?? defaults.upstream;
      // nearly every pattern is plain: checked in place, no string made
      const plain = plainKindAt(text, start, start + len);
      if (plain >= 0) {
        out.add(start, len, lineNo, kindAt(plain), channel, upstream);
      } else {
        const c = parseCondition(field(0)!); // throws what is wrong with it
        out.add(start, len, lineNo, c.kind, channel, upstream, c.labels.join('.'));
      }
    } catch (err) {
      errors.push(new ConfigError(where(), errorMessage(err)));
      if (errors.length >= MAX_REPORTED) break;
    }
  }
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) {
    const more = errors.length >= MAX_REPORTED ? `\n${source}: (stopped after ${MAX_REPORTED} problems)` : '';
    throw new ConfigError('', errors.map((e) => e.message).join('\n') + more);
  }
  return out.build();
}
