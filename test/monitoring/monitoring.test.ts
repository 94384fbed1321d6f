/**
 * The Grafana dashboard and the Prometheus alert rules shipped in monitoring/: every metric
 * they query is one the code registers (collected by test/metric-names.ts, the same collector
 * as the README's metric table), the dashboard is well-formed Grafana JSON, the rule file has
 * the shape Prometheus loads and passes `promtool check rules` and its unit tests
 * (`promtool test rules`: each alert fires on its trouble and not on a healthy node), and the
 * README documents every alert.
 */
import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registeredMetrics } from '../metric-names.ts';

const ROOT = join(import.meta.dir, '..', '..');
const DASHBOARD = join(ROOT, 'monitoring/grafana/dnsseal.json');
const RULES = join(ROOT, 'monitoring/prometheus/dnsseal-alerts.yaml');
const RULE_TESTS = join(ROOT, 'monitoring/prometheus/dnsseal-alerts.test.yaml');
const PROMTOOL = join(ROOT, 'build/tools/promtool');

/** Series Prometheus itself provides, not dnsseal. */
const PROMETHEUS_OWN = new Set(['up']);

/**
 * Metrics used here before the branch that registers them is merged: name → branch. The test
 * fails once the code registers one (then delete it here), so the list cannot go stale.
 */
const PENDING: Record<string, string> = {};

const known = await registeredMetrics();

/** The metric families an expression uses (histogram series mapped to their family). */
function metricsIn(expr: string): string[] {
  const out = new Set<string>();
  for (const m of expr.matchAll(/\b(dnsseal_[a-z0-9_]+)\b/g)) {
    const name = m[1]!;
    const family = name.replace(/_(bucket|sum|count)$/, '');
    out.add(family !== name && known.histograms.has(family) ? family : name);
  }
  for (const m of expr.matchAll(/(?<![a-z0-9_])([a-z_][a-z0-9_]*)\s*\{/g)) if (PROMETHEUS_OWN.has(m[1]!)) out.add(m[1]!);
  return [...out];
}

function unknownMetrics(exprs: string[]): string[] {
  const used = new Set(exprs.flatMap(metricsIn));
  return [...used].filter((n) => !known.names.has(n) && !PROMETHEUS_OWN.has(n) && !(n in PENDING)).sort();
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
  panels?: Panel[];
  collapsed?: boolean;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; definition?: string }> };
};

/** Every panel, the ones inside collapsed rows too. */
function allPanels(ps: Panel[] = dashboard.panels): Panel[] {
  return ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = Bun.YAML.parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
const alerts = rules.groups.flatMap((g) => g.rules);

function promtool(args: string[], cwd: string): { code: number; out: string } {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: run \`make promtool\` (make test fetches it)`);
  const r = Bun.spawnSync([PROMTOOL, ...args], { cwd, stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

describe('monitoring', () => {
  test('finds the registered metrics when the source is scanned', () => {
    expect(known.names.has('dnsseal_datapath_up')).toBe(true);
    expect(known.histograms.has('dnsseal_upstream_query_seconds')).toBe(true);
    expect(metricsIn('rate(dnsseal_upstream_query_seconds_count[5m]) + up{job="x"}').sort()).toEqual(['dnsseal_upstream_query_seconds', 'up']);
    expect(unknownMetrics(['dnsseal_no_such_thing_total'])).toEqual(['dnsseal_no_such_thing_total']);
  });

  test('queries only metrics the code registers when the dashboard is loaded', () => {
    const exprs = allPanels().flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    exprs.push(...dashboard.templating.list.map((v) => v.definition ?? ''));
    expect(exprs.length).toBeGreaterThan(30);
    expect(unknownMetrics(exprs)).toEqual([]);
  });

  test('is importable Grafana JSON when its panels are laid out', () => {
    expect(dashboard.uid).toBe('dnsseal-overview');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
    const panels = allPanels();
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      const g = p.gridPos;
      expect(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0).toBe(true);
      if (p.type === 'row') continue;
      expect(p.datasource?.uid).toBe('${datasource}');
      expect(p.targets?.length).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr).toContain('instance=~"$instance"');
      expect(new Set(p.targets!.map((t) => t.refId)).size).toBe(p.targets!.length);
    }
    // no two panels share a cell (rows and the panels of a collapsed row are placed alike)
    const cells = new Map<string, string>();
    for (const p of panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const k = `${x},${y}`;
          expect(cells.get(k), `${p.title} overlaps ${cells.get(k)} at ${k}`).toBeUndefined();
          cells.set(k, p.title);
        }
      }
    }
  });

  test('uses only registered metrics when the alert rules are evaluated', () => {
    expect(unknownMetrics(alerts.map((r) => r.expr))).toEqual([]);
    // a pending metric the code registers by now must leave PENDING
    expect(Object.keys(PENDING).filter((n) => known.names.has(n))).toEqual([]);
  });

  test('has the shape Prometheus loads when the rule file is parsed', () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    const names = alerts.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of alerts) {
      expect(r.alert).toMatch(/^Dnsseal[A-Z][A-Za-z]+$/);
      expect(typeof r.expr).toBe('string');
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info']).toContain(r.labels?.severity ?? '');
      expect(r.annotations?.summary).toBeTruthy();
      expect(r.annotations?.description).toBeTruthy();
    }
  });

  test('covers every trouble the operator asked to be paged for', () => {
    const used = (alert: string) => metricsIn(alerts.find((r) => r.alert === alert)?.expr ?? '');
    expect(used('DnssealGuardDropsRising')).toContain('dnsseal_datapath_guard_drops_total');
    expect(used('DnssealMapFilling')).toContain('dnsseal_registry_map_fill_ratio');
    expect(used('DnssealChannelDown')).toContain('dnsseal_ipsec_channel_up');
    expect(used('DnssealUpstreamsFailing')).toContain('dnsseal_upstream_timeouts_total');
    expect(used('DnssealServfailRate')).toContain('dnsseal_proxy_servfail_total');
    expect(used('DnssealDatapathLost')).toEqual(['dnsseal_datapath_up']);
    expect(used('DnssealStrongswanUnreachable')).toEqual(['dnsseal_ipsec_vici_up']);
    expect(used('DnssealRetiredEntriesHit')).toEqual(['dnsseal_datapath_retired_packets_total']);
  });

  test('passes promtool check rules when the file is loaded as Prometheus would', () => {
    const r = promtool(['check', 'rules', RULES], ROOT);
    expect(r.out).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(r.code).toBe(0);
  });

  test('fires each alert on its trouble and not on a healthy node when promtool runs the rule tests', () => {
    const r = promtool(['test', 'rules', 'dnsseal-alerts.test.yaml'], join(ROOT, 'monitoring/prometheus'));
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
    // and every alert has a test
    const tested = readFileSync(RULE_TESTS, 'utf8');
    for (const r of alerts) expect(tested).toContain(`alertname: ${r.alert}`);
  });

  test('documents every alert and both files when the README is read', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const wanted = [...alerts.map((r) => `\`${r.alert}\``), 'monitoring/grafana/dnsseal.json', 'monitoring/prometheus/dnsseal-alerts.yaml'];
    expect(wanted.filter((w) => !readme.includes(w))).toEqual([]);
  });
});
