/**
 * Metrics in Prometheus text exposition format. Names follow
 * `dnsseal_<subsystem>_<name>_{total|seconds|bytes}`; labels are bounded (rule, channel,
 * outcome, reason) — never a query name or an address.
 */
export type Labels = Record<string, string>;

export interface Counter {
  inc(labels?: Labels, by?: number): void;
  get(labels?: Labels): number;
  /** One series with its label key built once: its `inc` is for hot paths (a registration). */
  series(labels?: Labels): CounterSeries;
}
export interface CounterSeries {
  inc(by?: number): void;
}
export interface Gauge {
  set(value: number, labels?: Labels): void;
  get(labels?: Labels): number;
}
export interface Histogram {
  observe(value: number, labels?: Labels): void;
  /** One series with its label key built once (see Counter.series); exposed from its first observation. */
  series(labels?: Labels): HistogramSeries;
}
export interface HistogramSeries {
  observe(value: number): void;
}

const DEFAULT_BUCKETS = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5];

/** Characters a label value escapes in the exposition format. */
const NEEDS_ESCAPE = /[\\"\n]/;

function labelValue(v: unknown): string {
  const s = String(v);
  return NEEDS_ESCAPE.test(s) ? s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : s;
}

/** The last labels object keyed and its key: hot paths pass the same frozen constant object (or hold a `series`). */
let lastLabels: Labels | undefined;
let lastKey = '';

function labelKey(labels?: Labels): string {
  if (!labels) return '';
  if (labels === lastLabels) return lastKey;
  const key = keyOf(labels);
  // Only frozen objects are remembered: one that can change would give its old key.
  if (Object.isFrozen(labels)) {
    lastLabels = labels;
    lastKey = key;
  }
  return key;
}

function keyOf(labels: Labels): string {
  // Hot paths (a registration, a query) pass one label: no key array, no sort.
  let only: string | undefined;
  let n = 0;
  for (const k in labels) {
    only = k;
    if (++n > 1) break;
  }
  if (n === 1) return `${only}="${labelValue(labels[only!])}"`;
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${labelValue(labels[k])}"`).join(',');
}

type Family =
  | { type: 'counter' | 'gauge'; help: string; values: Map<string, number> }
  | { type: 'histogram'; help: string; buckets: number[]; values: Map<string, { counts: number[]; sum: number; count: number }> };

export class Metrics {
  private families = new Map<string, Family>();
  /** Callbacks run before exposition to refresh gauges read from elsewhere (map fill, SAs). */
  private collectors: Array<() => void> = [];

  counter(name: string, help: string): Counter {
    const fam = this.family(name, { type: 'counter', help, values: new Map() });
    const values = (fam as { values: Map<string, number> }).values;
    return {
      inc: (labels, by = 1) => {
        const k = labelKey(labels);
        values.set(k, (values.get(k) ?? 0) + by);
      },
      get: (labels) => values.get(labelKey(labels)) ?? 0,
      series: (labels) => {
        const k = labelKey(labels);
        return { inc: (by = 1) => void values.set(k, (values.get(k) ?? 0) + by) };
      },
    };
  }

  gauge(name: string, help: string): Gauge {
    const fam = this.family(name, { type: 'gauge', help, values: new Map() });
    const values = (fam as { values: Map<string, number> }).values;
    return {
      set: (v, labels) => void values.set(labelKey(labels), v),
      get: (labels) => values.get(labelKey(labels)) ?? 0,
    };
  }

  histogram(name: string, help: string, buckets = DEFAULT_BUCKETS): Histogram {
    const fam = this.family(name, { type: 'histogram', help, buckets, values: new Map() });
    if (fam.type !== 'histogram') throw new Error(`metrics: ${name} is not a histogram`);
    const cell = (k: string) => {
      let h = fam.values.get(k);
      if (!h) fam.values.set(k, (h = { counts: fam.buckets.map(() => 0), sum: 0, count: 0 }));
      return h;
    };
    const add = (h: { counts: number[]; sum: number; count: number }, v: number) => {
      for (let i = 0; i < fam.buckets.length; i++) if (v <= fam.buckets[i]!) h.counts[i]!++;
      h.sum += v;
      h.count++;
    };
    return {
      observe: (v, labels) => add(cell(labelKey(labels)), v),
      series: (labels) => {
        const k = labelKey(labels);
        let h: { counts: number[]; sum: number; count: number } | undefined;
        return { observe: (v) => add((h ??= cell(k)), v) };
      },
    };
  }

  /**
   * A histogram whose buckets are kept elsewhere as plain numbers (hot paths avoid label
   * handling): `read` returns per-bucket (non-cumulative) counts for `buckets`, the sum and the
   * count, and exposition makes them cumulative.
   */
  histogramFrom(name: string, help: string, buckets: number[], read: () => { counts: number[]; sum: number; count: number }): void {
    const fam = this.family(name, { type: 'histogram', help, buckets, values: new Map() });
    if (fam.type !== 'histogram') throw new Error(`metrics: ${name} is not a histogram`);
    this.onCollect(() => {
      const r = read();
      let acc = 0;
      const counts = buckets.map((_, i) => (acc += r.counts[i] ?? 0));
      fam.values.set('', { counts, sum: r.sum, count: r.count });
    });
  }

  /**
   * A counter whose totals are kept elsewhere (a kernel file): at every collect `read` returns
   * the absolute value of each labelled series, and the family shows exactly those (a series
   * `read` stops returning disappears). The source must only grow, as a counter does. The
   * family is exposed from the first collect that returns a series: a source that does not exist
   * on this machine exports nothing, not even HELP/TYPE.
   */
  counterFrom(name: string, help: string, read: () => Iterable<[Labels | undefined, number]>): void {
    this.onCollect(() => {
      const rows = [...read()];
      if (rows.length === 0 && !this.families.has(name)) return;
      const fam = this.family(name, { type: 'counter', help, values: new Map() });
      if (fam.type !== 'counter') throw new Error(`metrics: ${name} is not a counter`);
      fam.values.clear();
      for (const [labels, v] of rows) fam.values.set(labelKey(labels), v);
    });
  }

  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** Prometheus text format 0.0.4. */
  expose(): string {
    for (const c of this.collectors) {
      try {
        c();
      } catch {
        /* a failing collector must not break the endpoint */
      }
    }
    const out: string[] = [];
    for (const [name, fam] of this.families) {
      out.push(`# HELP ${name} ${fam.help}`, `# TYPE ${name} ${fam.type}`);
      if (fam.type === 'histogram') {
        for (const [k, h] of fam.values) {
          const sep = k ? ',' : '';
          fam.buckets.forEach((b, i) => out.push(`${name}_bucket{${k}${sep}le="${b}"} ${h.counts[i]}`));
          out.push(`${name}_bucket{${k}${sep}le="+Inf"} ${h.count}`);
          out.push(`${name}_sum${k ? `{${k}}` : ''} ${h.sum}`, `${name}_count${k ? `{${k}}` : ''} ${h.count}`);
        }
      } else {
        for (const [k, v] of fam.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
      }
    }
    return out.join('\n') + '\n';
  }

  private family(name: string, init: Family): Family {
    const existing = this.families.get(name);
    if (existing) return existing;
    this.families.set(name, init);
    return init;
  }
}
