import { describe, expect, test } from 'bun:test';
import { registeredMetrics } from './metric-names.ts';
import { checkConfig } from '../src/config/check.ts';
import { deps } from './config/fixtures.ts';

const root = new URL('..', import.meta.url);
const read = (p: string) => Bun.file(new URL(p, root)).text();

/** The README carries the config reference generated from the schema (src/config/REFERENCE.md). */
describe('readme', () => {
  test('embeds the current config reference when the schema changes', async () => {
    const readme = await read('README.md');
    const m = /<!-- BEGIN config-reference[^>]*-->\n([\s\S]*?)\n<!-- END config-reference -->/.exec(readme);
    expect(m).not.toBeNull();
    const ref = await read('src/config/REFERENCE.md');
    const expected = ref
      .split('\n')
      .slice(1)
      .join('\n')
      .replace(/^\n+/, '')
      .replace(/\n## /g, '\n### ')
      .replace(/\n+$/, '');
    expect(m![1]).toBe(expected);
  });

  test('lists every metric the code registers when a metric is added', async () => {
    const readme = await read('README.md');
    const { names } = await registeredMetrics();
    expect(names.size).toBeGreaterThan(20);
    const missing = [...names].filter((n) => !readme.includes(`\`${n}\``));
    expect(missing).toEqual([]);
  });

  test('the Rules example configuration passes check with no error and no warning when copied as it is', async () => {
    const readme = await read('README.md');
    const example = /```yaml\n(mode: gateway\nlan: \[eth1\][\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const r = checkConfig(new Map([['config', ['example.yaml']]]), deps({ 'example.yaml': example! }), { interfaces: () => ['lo', 'eth0', 'eth1'] });
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => w.message)).toEqual([]);
  });

  test('names the two commands a new operator runs', async () => {
    const readme = await read('README.md');
    expect(readme).toContain('make run');
    expect(readme).toContain('make test');
  });
});
