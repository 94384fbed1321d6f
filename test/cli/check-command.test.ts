/**
 * `dnsseal check` as the operator sees it: `--json` always prints one report on stdout with a
 * fixed shape, valid or not; the human form lists every problem and warning; warnings never
 * fail `check` or `run`, and `run` logs them when it starts.
 */
import { describe, expect, test } from 'bun:test';
import { cli } from './fixtures.ts';

const HEAD = 'upstreams:\n  default: 192.0.2.53\nchannels:\n  hub: {kind: tunnel, gateway: 192.0.2.1}\n';
const files = {
  'good.yaml': `${HEAD}tables:\n  default:\n    - {match: "*.corp.example", channel: hub}\n`,
  'warned.yaml': `mode: host\nlan: [eth1]\n${HEAD}tables:\n  default:\n    - {match: "*.corp.example", channel: hub}\n    - {match: "www.corp.example", channel: hub}\n`,
  'bad.yaml': `mode: router\n${HEAD}tables:\n  default:\n    - {match: "*.corp.example", channel: nope}\n`,
  'broken.yaml': 'mode: host\nlisten: [127.0.0.1:53\n',
};

/** The report's shape: exactly these keys, and every problem exactly {file, line, key, message}. */
function expectReport(text: string): { ok: boolean; errors: unknown[]; warnings: unknown[]; summary: unknown } {
  const lines = text.split('\n');
  expect(lines.length).toBe(2); // one line, newline-terminated
  const r = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(Object.keys(r).sort()).toEqual(['errors', 'ok', 'summary', 'warnings']);
  expect(typeof r.ok).toBe('boolean');
  for (const p of [...(r.errors as unknown[]), ...(r.warnings as unknown[])]) {
    const q = p as Record<string, unknown>;
    expect(Object.keys(q).sort()).toEqual(['file', 'key', 'line', 'message']);
    expect(q.file === null || typeof q.file === 'string').toBe(true);
    expect(q.line === null || (typeof q.line === 'number' && Number.isInteger(q.line))).toBe(true);
    expect(q.key === null || typeof q.key === 'string').toBe(true);
    expect(typeof q.message).toBe('string');
  }
  expect(r.ok ? typeof r.summary === 'object' && r.summary !== null : r.summary === null).toBe(true);
  return r as never;
}

describe('cli/check', () => {
  test.each([
    ['a valid file', ['--config', 'good.yaml'], 0, true, 0, 0],
    ['a file with warnings', ['--config', 'warned.yaml'], 0, true, 0, 2],
    ['an invalid file', ['--config', 'bad.yaml'], 1, false, 2, 0],
    ['a file that does not parse', ['--config', 'broken.yaml'], 1, false, 1, 0],
    ['a file that does not exist', ['--config', 'gone.yaml'], 1, false, 1, 0],
    ['a bad flag value', ['--config', 'good.yaml', '--min-hold', 'x'], 1, false, 1, 0],
    ['a flag check does not take', ['--config', 'good.yaml', '--frobnicate'], 1, false, 1, 0],
  ])('check --json prints the report on stdout and nothing on stderr for %s', async (_label, argv, code, ok, errors, warnings) => {
    const h = await cli(['check', '--json', ...argv], { files });
    const r = expectReport(h.out);
    expect([h.code, r.ok, r.errors.length, r.warnings.length, h.err]).toEqual([code, ok, errors, warnings, '']);
  });

  test('check --json locates each problem by file, line and key when the file is invalid', async () => {
    const h = await cli(['check', '--json', '--config', 'bad.yaml'], { files });
    expect(expectReport(h.out).errors).toEqual([
      { file: 'bad.yaml', line: 1, key: 'mode', message: 'must be one of host, gateway, intercept, not "router"' },
      { file: 'bad.yaml', line: 8, key: 'tables.default[0]', message: 'table "default" rule 0 (*.corp.example): unknown channel "nope" (defined: hub)' },
    ]);
  });

  test('check prints every error and warning as file:line: key: message and exits 1 when there are errors', async () => {
    const h = await cli(['check', '--config', 'bad.yaml', '--lan', 'eth1'], { files });
    expect(h.code).toBe(1);
    expect(h.out).toBe('');
    expect(h.err.split('\n')).toEqual([
      'dnsseal: bad.yaml:1: mode: must be one of host, gateway, intercept, not "router"',
      'dnsseal: bad.yaml:8: tables.default[0]: table "default" rule 0 (*.corp.example): unknown channel "nope" (defined: hub)',
      'dnsseal: 2 errors, 0 warnings',
      '',
    ]);
  });

  test('check passes and says how many warnings when there are only warnings', async () => {
    const h = await cli(['check', '--config', 'warned.yaml'], { files });
    expect(h.code).toBe(0);
    expect(h.err).toContain('dnsseal: warning: warned.yaml:2: lan: mode host does not use it');
    expect(h.err).toContain('dnsseal: warning: warned.yaml:10: tables.default[1]: table "default" rule #1 "www.corp.example" never wins');
    expect(h.out).toEndWith('; 2 warnings\n');
  });

  test('check warns about a missing interface when the machine lists its interfaces', async () => {
    const h = await cli(['check', '--config', 'good.yaml', '--wan', 'wan9', '--json'], { files, interfaces: ['lo', 'eth0'] });
    expect(expectReport(h.out).warnings).toEqual([
      { file: null, line: null, key: '--wan', message: 'interface "wan9" does not exist here (interfaces: eth0, lo); the leak guard goes on it when it appears — check the name' },
    ]);
  });

  test('run starts and logs each warning when the configuration has warnings', async () => {
    const h = await cli(['run', '--config', 'warned.yaml'], { files });
    expect(h.code).toBe(0);
    expect(h.daemonRuns).toBe(1);
    expect(h.logs.filter((l) => l.includes('level=warn')).length).toBe(2);
    expect(h.logs.join('\n')).toContain('config: warned.yaml:2: lan: mode host does not use it');
  });

  test('run refuses with every problem and does not start when the configuration has errors', async () => {
    const h = await cli(['run', '--config', 'bad.yaml'], { files });
    expect([h.code, h.daemonRuns]).toEqual([1, 0]);
    expect(h.err.trimEnd().split('\n').length).toBe(2);
  });

  test('accepts a client range that names the default table when no default table is configured (a range carved out of another)', async () => {
    const carved = `mode: gateway\nlan: [eth1]\nlisten: [10.0.0.1:53]\n${HEAD}clients:\n  - {cidr: 10.0.0.0/8, table: eng}\n  - {cidr: 10.5.0.0/16, table: default}\ntables:\n  eng:\n    - {match: "*.corp.example", channel: hub}\n`;
    const h = await cli(['check', '--config', 'carved.yaml'], { files: { 'carved.yaml': carved }, interfaces: ['lo', 'eth1'] });
    expect(h.err).toBe('');
    expect(h.code).toBe(0);
    const e = await cli(['explain', 'www.corp.example', '--config', 'carved.yaml', '--client', '10.5.1.1', '--json'], { files: { 'carved.yaml': carved } });
    expect(JSON.parse(e.out)).toMatchObject({ table: 'default', rule: null, channel: null });
  });
});
