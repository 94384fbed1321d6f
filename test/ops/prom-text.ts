/**
 * A small, strict parser for the Prometheus text exposition format 0.0.4, for tests: every line
 * is a HELP, a TYPE or a sample; TYPE comes before a family's samples and only once; label
 * values use the three escapes; histogram samples are `_bucket` (with `le`), `_sum`, `_count`.
 * Throws on anything else, naming the line.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  /** A TYPE line was seen. */
  typed: boolean;
  samples: Sample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(s: string, where: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: bad value ${JSON.stringify(s)}`);
  return Number(s);
}

function parseLabels(text: string, where: string): [Record<string, string>, string] {
  const labels: Record<string, string> = {};
  let rest = text.slice(1);
  while (!rest.startsWith('}')) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`${where}: bad label name at ${JSON.stringify(rest)}`);
    const lname = m[0];
    rest = rest.slice(lname.length);
    if (!rest.startsWith('="')) throw new Error(`${where}: expected =" after ${lname}`);
    rest = rest.slice(2);
    let value = '';
    for (;;) {
      const c = rest[0];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      rest = rest.slice(1);
      if (c === '"') break;
      if (c === '\\') {
        const e = rest[0];
        rest = rest.slice(1);
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new Error(`${where}: bad escape \\${e}`);
      } else value += c;
    }
    if (lname in labels) throw new Error(`${where}: duplicate label ${lname}`);
    labels[lname] = value;
    if (rest.startsWith(',')) rest = rest.slice(1);
    else if (!rest.startsWith('}')) throw new Error(`${where}: expected , or } after label ${lname}`);
  }
  return [labels, rest.slice(1)];
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  if (families.has(sample)) return families.get(sample);
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const f = families.get(sample.slice(0, -suffix.length));
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
    }
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === '') throw new Error(`${where}: empty line`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) throw new Error(`${where}: comment is neither HELP nor TYPE: ${line}`);
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      let fam = families.get(name);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: bad type ${rest}`);
        if (fam && fam.samples.length > 0) throw new Error(`${where}: TYPE after samples of ${name}`);
        if (fam?.typed) throw new Error(`${where}: second TYPE for ${name}`);
        if (!fam) families.set(name, (fam = { name, type: 'untyped', typed: false, samples: [] }));
        fam.type = rest as Family['type'];
        fam.typed = true;
      } else {
        if (fam?.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        if (fam && fam.samples.length > 0) throw new Error(`${where}: HELP after samples of ${name}`);
        if (!fam) families.set(name, (fam = { name, type: 'untyped', typed: false, samples: [] }));
        fam.help = rest;
      }
      return;
    }
    const nm = METRIC.exec(line);
    if (!nm) throw new Error(`${where}: bad metric name: ${line}`);
    let rest = line.slice(nm[0].length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) [labels, rest] = parseLabels(rest, where);
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error(`${where}: expected " VALUE [TIMESTAMP]": ${line}`);
    const value = parseValue(parts[1]!, where);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`${where}: bad timestamp`);
    const fam = familyOf(nm[0], families);
    if (!fam) throw new Error(`${where}: sample ${nm[0]} has no TYPE before it`);
    if (fam.type === 'histogram' && nm[0] === fam.name) throw new Error(`${where}: histogram sample without suffix`);
    if (nm[0].endsWith('_bucket') && fam.type === 'histogram' && !('le' in labels)) throw new Error(`${where}: bucket without le`);
    fam.samples.push({ name: nm[0], labels, value });
  });
  return families;
}

/**
 * The project's naming rule: `dnsseal_<subsystem>_<name>` ending in `_total` (counters),
 * `_seconds` or `_bytes` (histograms); gauges may end otherwise. Returns the violations.
 */
export function namingViolations(families: Map<string, Family>): string[] {
  const out: string[] = [];
  for (const f of families.values()) {
    if (!/^dnsseal_[a-z0-9]+_[a-z0-9_]+$/.test(f.name)) out.push(`${f.name}: not dnsseal_<subsystem>_<name>`);
    else if (f.type === 'counter' && !f.name.endsWith('_total')) out.push(`${f.name}: counter must end in _total`);
    else if (f.type === 'histogram' && !/_(seconds|bytes)$/.test(f.name)) out.push(`${f.name}: histogram must end in _seconds or _bytes`);
    else if (f.type === 'gauge' && /_total$/.test(f.name)) out.push(`${f.name}: a gauge must not end in _total`);
    else if (f.type !== 'counter' && f.type !== 'gauge' && f.type !== 'histogram') out.push(`${f.name}: unexpected type ${f.type}`);
  }
  return out;
}
