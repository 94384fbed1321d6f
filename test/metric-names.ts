/**
 * The metric names the code registers, collected from the source (every `dnsseal_…` name
 * written as a string with a metric suffix, and every name passed to counter/gauge/histogram).
 * One collector for every test that must agree with the code: the README's metric table
 * (test/readme.test.ts) and the dashboard and alert rules (test/monitoring/).
 */
const ROOT = new URL('..', import.meta.url).pathname;

export interface RegisteredMetrics {
  /** Every registered family name. */
  names: Set<string>;
  /** Histogram families (their series are `_bucket`, `_sum` and `_count`). */
  histograms: Set<string>;
}

export async function registeredMetrics(): Promise<RegisteredMetrics> {
  const names = new Set<string>();
  const histograms = new Set<string>();
  for await (const file of new Bun.Glob('src/**/*.ts').scan({ cwd: ROOT })) {
    const text = await Bun.file(ROOT + file).text();
    for (const m of text.matchAll(/['"](dnsseal_[a-z0-9_]+_(?:total|seconds|bytes|entries|ratio|addresses|up))['"]/g)) names.add(m[1]!);
    for (const m of text.matchAll(/(?:counter|gauge|histogram|histogramFrom)\(\s*['"](dnsseal_[a-z0-9_]+)['"]/g)) names.add(m[1]!);
    for (const m of text.matchAll(/(?:histogram|histogramFrom)\(\s*['"](dnsseal_[a-z0-9_]+)['"]/g)) histograms.add(m[1]!);
  }
  return { names, histograms };
}
