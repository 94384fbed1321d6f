/**
 * The source tree's layering, checked on the import graph (every relative import, followed
 * transitively): the policy engine and the DNS codecs sit below the config, the daemon and
 * the back ends, so they may not reach them — not even through another module. And one IP
 * address formatter: no module but src/util/ip.ts builds address text by hand.
 */
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const ROOT = join(import.meta.dir, '..');

function sources(): string[] {
  return [...new Bun.Glob('src/**/*.ts').scanSync({ cwd: ROOT })].filter((f) => !f.endsWith('.d.ts')).sort();
}

/** Relative imports of a file (static `import`/`export … from`, and `import()`), as repo paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2]!;
    out.push(relative(ROOT, join(ROOT, dirname(file), spec)));
  }
  return out;
}

/** Every file `start` reaches, with the chain that reached it. */
function closure(start: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[start, [start]]]);
  const queue = [start];
  while (queue.length) {
    const f = queue.shift()!;
    if (!f.endsWith('.ts')) continue; // embedded objects, YAML, unit templates
    for (const dep of importsOf(f)) {
      if (seen.has(dep)) continue;
      seen.set(dep, [...seen.get(f)!, dep]);
      queue.push(dep);
    }
  }
  return seen;
}

/** What each lower folder may reach (prefixes of repo paths). */
const ALLOWED: Record<string, string[]> = {
  'src/policy/': ['src/policy/', 'src/util/', 'src/ops/metrics.ts'],
  'src/dns/': ['src/dns/', 'src/util/', 'src/policy/types.ts'],
  'src/util/': ['src/util/'],
};

describe('layers', () => {
  test.each(Object.keys(ALLOWED))('%s reaches only the layers below it when its imports are followed', (folder) => {
    const files = sources().filter((f) => f.startsWith(folder));
    expect(files.length).toBeGreaterThan(0);
    const bad: string[] = [];
    for (const f of files) {
      for (const [dep, chain] of closure(f)) {
        if (!ALLOWED[folder]!.some((p) => dep.startsWith(p))) bad.push(chain.join(' → '));
      }
    }
    expect([...new Set(bad)]).toEqual([]);
  });

  test('finds an import of a higher layer when a lower module has one', () => {
    // the checker itself: a module of the config layer is reached from src/config/load.ts
    expect([...closure('src/config/load.ts').keys()].some((f) => f.startsWith('src/policy/'))).toBe(true);
  });

  test('no module but src/util/ip.ts writes address text when the source is searched for hand-made formatting', () => {
    const patterns: Array<[string, RegExp]> = [
      ['hex groups joined with ":"', /toString\(16\)\)?(\.padStart\([^)]*\))?\)?\.join\(\s*['"]:['"]\s*\)/],
      ['a "::" spliced between groups', /\}::\$\{/],
      ['a dotted quad built from four values', /\$\{[^}]+\}\.\$\{[^}]+\}\.\$\{[^}]+\}\.\$\{[^}]+\}/],
      ['Node’s address parser', /import\s*\{[^}]*\bisIP(v4|v6)?\b[^}]*\}\s*from\s*['"](node:)?net['"]/],
    ];
    const found: string[] = [];
    for (const f of sources()) {
      if (f === 'src/util/ip.ts') continue;
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const [what, re] of patterns) if (re.test(text)) found.push(`${f}: ${what}`);
    }
    expect(found).toEqual([]);
    // and the patterns do see the real formatter
    const ip = readFileSync(join(ROOT, 'src/util/ip.ts'), 'utf8');
    expect(patterns.slice(1, 3).every(([, re]) => re.test(ip))).toBe(true);
  });
});
