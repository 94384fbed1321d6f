import { afterEach, describe, expect, test } from 'bun:test';
import { Metrics } from '../../src/ops/metrics.ts';
import { METRICS_CONTENT_TYPE, type MetricsServer, parseListenAddr, startMetricsServer } from '../../src/ops/metrics-server.ts';
import { silentLogger } from '../../src/util/log.ts';
import { OTHER, reg, rig } from '../registry/helpers.ts';
import { namingViolations, parsePrometheusText } from './prom-text.ts';

let servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers) await s.stop();
  servers = [];
});

function serve(metrics: Metrics, addr = '127.0.0.1:0'): MetricsServer {
  const s = startMetricsServer(addr, metrics, silentLogger);
  servers.push(s);
  return s;
}

/** Metrics as a running daemon's registry fills them: successes, a map_full, a conflict. */
async function populated(): Promise<Metrics> {
  const metrics = new Metrics();
  const { registry } = rig({ metrics, dpCapacity: 3 });
  await registry.register(reg({ addrs: ['192.0.2.1', '192.0.2.2'] }));
  await registry.register(reg({ addrs: ['192.0.2.3', '192.0.2.4', '192.0.2.5'] })).catch(() => {});
  await registry.register(reg({ addrs: ['192.0.2.1'], channel: OTHER })).catch(() => {});
  return metrics;
}

describe('ops/metrics-server', () => {
  test('GET /metrics returns the exposition with the 0.0.4 content type', async () => {
    const metrics = await populated();
    const s = serve(metrics);
    const res = await fetch(s.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(METRICS_CONTENT_TYPE);
    const fams = parsePrometheusText(await res.text());
    expect(fams.get('dnsseal_registry_entries')!.samples).toEqual([{ name: 'dnsseal_registry_entries', labels: { channel: 'hub' }, value: 2 }]);
    const outcomes = fams.get('dnsseal_registry_registrations_total')!.samples.map((x) => [x.labels.outcome, x.value]);
    expect(outcomes.sort()).toEqual([
      ['conflict', 1],
      ['map_full', 1],
      ['ok', 1],
    ]);
    expect(fams.get('dnsseal_registry_map_full_total')!.samples[0]!.value).toBe(1);
    const hist = fams.get('dnsseal_registry_register_seconds')!;
    expect(hist.type).toBe('histogram');
    expect(hist.samples.find((x) => x.name.endsWith('_count') && x.labels.outcome === 'ok')!.value).toBe(1);
  });

  test('every exposed name follows the naming rule when the registry has run', async () => {
    const fams = parsePrometheusText((await populated()).expose());
    expect(fams.size).toBeGreaterThanOrEqual(5);
    expect(namingViolations(fams)).toEqual([]);
  });

  test('the naming check reports a bad name when one is exposed', () => {
    const m = new Metrics();
    m.counter('dnsseal_registry_things', 'no _total').inc();
    m.histogram('dnsseal_proxy_latency', 'no unit').observe(1);
    m.gauge('registry_entries', 'no prefix').set(1);
    expect(namingViolations(parsePrometheusText(m.expose()))).toEqual([
      'dnsseal_registry_things: counter must end in _total',
      'dnsseal_proxy_latency: histogram must end in _seconds or _bytes',
      'registry_entries: not dnsseal_<subsystem>_<name>',
    ]);
  });

  test.each([
    ['a sample without TYPE', 'dnsseal_x_total 1\n'],
    ['a bad label escape', '# TYPE dnsseal_x_total counter\ndnsseal_x_total{a="\\t"} 1\n'],
    ['a missing newline at the end', '# TYPE dnsseal_x_total counter\ndnsseal_x_total 1'],
    ['a non-numeric value', '# TYPE dnsseal_x_total counter\ndnsseal_x_total one\n'],
    ['a second TYPE line', '# TYPE dnsseal_x_total counter\n# TYPE dnsseal_x_total gauge\n'],
    ['a bucket without le', '# TYPE dnsseal_x_seconds histogram\ndnsseal_x_seconds_bucket 1\n'],
  ])('the test parser rejects %s', (_label, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });

  test('label values with quotes, backslashes and newlines survive when exposed and parsed', () => {
    const m = new Metrics();
    m.counter('dnsseal_test_odd_total', 'h').inc({ reason: 'a"b\\c\nd' });
    const fams = parsePrometheusText(m.expose());
    expect(fams.get('dnsseal_test_odd_total')!.samples[0]!.labels).toEqual({ reason: 'a"b\\c\nd' });
  });

  test.each(['/', '/metrics/', '/debug/pprof', '/metricsx'])('GET %s is 404', async (path) => {
    const s = serve(new Metrics());
    const res = await fetch(`http://127.0.0.1:${s.port}${path}`);
    expect(res.status).toBe(404);
  });

  test('POST /metrics is 405 when the method is not GET', async () => {
    const s = serve(new Metrics());
    const res = await fetch(s.url, { method: 'POST' });
    expect(res.status).toBe(405);
  });

  test('an IPv6 loopback address is accepted when bracketed', async () => {
    const s = serve(new Metrics(), '[::1]:0');
    expect(s.url).toStartWith('http://[::1]:');
    expect((await fetch(s.url)).status).toBe(200);
  });

  test('a busy port gives listen_failed when another server has it', () => {
    const s = serve(new Metrics());
    expect(() => startMetricsServer(`127.0.0.1:${s.port}`, new Metrics(), silentLogger)).toThrow('cannot listen on');
  });

  test.each([
    ['127.0.0.1:9153', { hostname: '127.0.0.1', port: 9153 }],
    ['[::1]:9153', { hostname: '::1', port: 9153 }],
    ['localhost:0', { hostname: 'localhost', port: 0 }],
  ])('parseListenAddr(%s) splits host and port', (addr, want) => {
    expect(parseListenAddr(addr)).toEqual(want);
  });

  test.each(['9153', '::1:9153', '127.0.0.1:99999', '127.0.0.1:', ''])('parseListenAddr(%s) throws when malformed', (addr) => {
    expect(() => parseListenAddr(addr)).toThrow('is not ADDR:PORT');
  });
});
