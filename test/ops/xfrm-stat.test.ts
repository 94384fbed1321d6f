import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../../src/ops/metrics.ts';
import { exportXfrmStat, parseXfrmStat, XFRM_STAT_PATH } from '../../src/ops/xfrm-stat.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';
import { namingViolations, parsePrometheusText } from './prom-text.ts';

const FIXTURE = new URL('./fixtures/xfrm_stat', import.meta.url).pathname;

describe('ops/xfrm-stat parse', () => {
  test('reads every counter of the kernel file in file order', async () => {
    const rows = parseXfrmStat(await Bun.file(FIXTURE).text());
    expect(rows.length).toBe(28);
    expect(rows[0]).toEqual(['XfrmInError', 0]);
    expect(new Map(rows).get('XfrmOutNoStates')).toBe(12);
    expect(new Map(rows).get('XfrmOutPolBlock')).toBe(4294967296);
  });

  test.each([
    ['', []],
    ['XfrmOutNoStates 7', [['XfrmOutNoStates', 7]]],
    ['  XfrmOutNoStates\t\t7  \r', [['XfrmOutNoStates', 7]]],
    ['XfrmOutNoStates', []],
    ['XfrmOutNoStates 7 8', []],
    ['XfrmOutNoStates -1', []],
    ['XfrmOutNoStates 1e3', []],
    ['XfrmOutNoStates 0x10', []],
    ['XfrmOutNoStates 99999999999999999999', []],
    ['NotXfrm 5', []],
    ['Xfrm"bad 5', []],
    ['XfrmA 1\nXfrmA 2', [['XfrmA', 1]]],
    ['garbage\nXfrmInError 2\n\n# comment 3\nXfrmOutError 4\n', [['XfrmInError', 2], ['XfrmOutError', 4]]],
  ])('skips what is not one counter and one count when the text is %p', (text, rows) => {
    expect(parseXfrmStat(text)).toEqual(rows as Array<[string, number]>);
  });

  test('keeps at most 64 counters when the file is far longer than the kernel writes', () => {
    const text = Array.from({ length: 500 }, (_, i) => `XfrmX${i} ${i}`).join('\n');
    expect(parseXfrmStat(text).length).toBe(64);
  });
});

describe('ops/xfrm-stat metric', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'dnsseal-xfrm-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('exports every kernel counter as dnsseal_xfrm_errors_total{counter} when the file exists', () => {
    const m = new Metrics();
    exportXfrmStat({ metrics: m, log: silentLogger, path: FIXTURE });
    const fams = parsePrometheusText(m.expose());
    const fam = fams.get('dnsseal_xfrm_errors_total')!;
    expect(fam.type).toBe('counter');
    expect(fam.help).toStartWith("The kernel's XFRM error counters (/proc/net/xfrm_stat), e.g. XfrmOutNoStates:");
    expect(fam.samples.length).toBe(28);
    expect(fam.samples.find((s) => s.labels.counter === 'XfrmOutNoStates')?.value).toBe(12);
    expect(namingViolations(fams)).toEqual([]);
  });

  test('follows the file at each scrape when the kernel counts more drops', () => {
    const path = join(dir, 'xfrm_stat');
    writeFileSync(path, 'XfrmOutNoStates\t1\n');
    const m = new Metrics();
    exportXfrmStat({ metrics: m, log: silentLogger, path });
    expect(m.expose()).toContain('dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"} 1\n');
    writeFileSync(path, 'XfrmOutNoStates\t5\nXfrmOutPolBlock\t2\n');
    const text = m.expose();
    expect(text).toContain('dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"} 5\n');
    expect(text).toContain('dnsseal_xfrm_errors_total{counter="XfrmOutPolBlock"} 2\n');
  });

  test('exports nothing and logs once when the kernel has no XFRM counters', () => {
    const lines: string[] = [];
    const m = new Metrics();
    m.counter('dnsseal_test_other_total', 'other').inc();
    exportXfrmStat({ metrics: m, log: createLogger({ write: (l) => lines.push(l) }), path: join(dir, 'missing') });
    for (let i = 0; i < 5; i++) expect(m.expose()).not.toContain('dnsseal_xfrm_errors_total');
    expect(m.expose()).toContain('dnsseal_test_other_total 1');
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain('level=info');
    expect(lines[0]).toContain('no XFRM counters');
  });

  test('keeps the scrape working and logs once when the file cannot be read', () => {
    const lines: string[] = [];
    const m = new Metrics();
    exportXfrmStat({ metrics: m, log: createLogger({ write: (l) => lines.push(l) }), path: dir }); // a directory: EISDIR
    expect(() => m.expose()).not.toThrow();
    m.expose();
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain('level=warn');
  });

  test('drops the series when the file goes away after it was read', () => {
    const path = join(dir, 'xfrm_stat');
    writeFileSync(path, 'XfrmOutNoStates 3\n');
    const m = new Metrics();
    exportXfrmStat({ metrics: m, log: silentLogger, path });
    expect(m.expose()).toContain('{counter="XfrmOutNoStates"} 3');
    unlinkSync(path);
    expect(m.expose()).not.toContain('counter="XfrmOutNoStates"');
  });

  test('reads this machine\'s namespace when no path is given', () => {
    const m = new Metrics();
    exportXfrmStat({ metrics: m, log: silentLogger });
    const text = m.expose();
    if (existsSync(XFRM_STAT_PATH)) {
      expect(text).toContain('dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"}');
    } else {
      console.log(`${XFRM_STAT_PATH} is absent (kernel without XFRM): checking that nothing is exported`);
      expect(text).not.toContain('dnsseal_xfrm_errors_total');
    }
  });
});

describe('ops/metrics counterFrom', () => {
  test('shows the absolute values read at collect time when the totals are kept elsewhere', () => {
    const m = new Metrics();
    let totals: Array<[{ reason: string } | undefined, number]> = [[{ reason: 'a' }, 3], [{ reason: 'b' }, 0]];
    m.counterFrom('dnsseal_test_kept_total', 'kept elsewhere', () => totals);
    expect(m.expose()).toBe('# HELP dnsseal_test_kept_total kept elsewhere\n# TYPE dnsseal_test_kept_total counter\ndnsseal_test_kept_total{reason="a"} 3\ndnsseal_test_kept_total{reason="b"} 0\n');
    totals = [[{ reason: 'a' }, 10]];
    expect(m.expose()).toBe('# HELP dnsseal_test_kept_total kept elsewhere\n# TYPE dnsseal_test_kept_total counter\ndnsseal_test_kept_total{reason="a"} 10\n');
    totals = [[undefined, 7]];
    expect(m.expose()).toContain('\ndnsseal_test_kept_total 7\n');
  });

  test('exposes no family until the source returns a series', () => {
    const m = new Metrics();
    let totals: Array<[undefined, number]> = [];
    m.counterFrom('dnsseal_test_kept_total', 'kept elsewhere', () => totals);
    expect(m.expose()).toBe('\n');
    totals = [[undefined, 1]];
    expect(m.expose()).toContain('dnsseal_test_kept_total 1');
  });

  test('keeps the other metrics when the source throws', () => {
    const m = new Metrics();
    m.gauge('dnsseal_test_level', 'g').set(2);
    m.counterFrom('dnsseal_test_kept_total', 'kept elsewhere', () => {
      throw new Error('boom');
    });
    expect(m.expose()).toContain('dnsseal_test_level 2');
  });
});
