/**
 * The table of settings drives the loader: the file and the flag of a value setting accept the
 * same values through one ValueType, defaults come from the table, and the Config type is
 * derived from it.
 */
import { describe, expect, test } from 'bun:test';
import { loadConfigText } from '../../src/config/load.ts';
import { SETTINGS } from '../../src/config/settings.ts';
import type { Config } from '../../src/config/types.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { deps, flags } from './fixtures.ts';

const BASE = 'upstreams: {default: 192.0.2.53, ps: {address: 192.0.2.9, tsig_key: k}}\ntsig_keys:\n  k: {secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==}\n';
const VALUES = SETTINGS.filter((s) => s.kind === 'value');

/** One valid non-default value per value setting: as YAML, as flag texts, and the Config value. */
const SAMPLES: Record<string, { yaml: string; flag: string[]; want: unknown; extra?: string }> = {
  mode: { yaml: 'gateway', flag: ['gateway'], want: 'gateway', extra: 'lan: [lan0]\n' },
  listen: { yaml: '["127.0.0.1:5300", "[::1]:5300"]', flag: ['127.0.0.1:5300', '[::1]:5300'], want: ['127.0.0.1:5300', '[::1]:5300'] },
  upstream_source: { yaml: '"192.0.2.7"', flag: ['192.0.2.7'], want: '192.0.2.7' },
  allow_clients: { yaml: '["10.1.0.0/16", "2001:db8::/32"]', flag: ['10.1.0.0/16', '2001:db8::/32'], want: ['10.1.0.0/16', '2001:db8::/32'] },
  log_queries: { yaml: 'true', flag: ['true'], want: true },
  datapath: { yaml: 'none', flag: ['none'], want: 'none' },
  lan: { yaml: '[lan0, lan1]', flag: ['lan0', 'lan1'], want: ['lan0', 'lan1'] },
  wan: { yaml: '[wan0]', flag: ['wan0'], want: ['wan0'] },
  trusted_forwarders: { yaml: '["127.0.0.1/32", "::1"]', flag: ['127.0.0.1/32', '::1'], want: ['127.0.0.1/32', '::1/128'], extra: 'mode: gateway\nlan: [lan0]\n' },
  enforce_dns: { yaml: 'drop', flag: ['drop'], want: 'drop', extra: 'mode: gateway\nlan: [lan0]\n' },
  control: { yaml: '/tmp/c.sock', flag: ['/tmp/c.sock'], want: '/tmp/c.sock' },
  log_level: { yaml: 'debug', flag: ['debug'], want: 'debug' },
  log_format: { yaml: 'json', flag: ['json'], want: 'json' },
  metrics: { yaml: '"127.0.0.1:9153"', flag: ['127.0.0.1:9153'], want: '127.0.0.1:9153' },
  min_hold: { yaml: '5', flag: ['5'], want: 5 },
  idle: { yaml: '10', flag: ['10'], want: 10 },
  retire: { yaml: '3600', flag: ['3600'], want: 3600 },
  upstream_timeout: { yaml: '900', flag: ['900'], want: 900 },
  upstream_tls_ca: { yaml: '/etc/dnsseal/ca.pem', flag: ['/etc/dnsseal/ca.pem'], want: '/etc/dnsseal/ca.pem' },
  cache_size: { yaml: '0', flag: ['0'], want: 0 },
  hosts_ttl: { yaml: '300', flag: ['300'], want: 300 },
  cache_bytes: { yaml: '1048576', flag: ['1048576'], want: 1048576 },
  cache_max_ttl: { yaml: '600', flag: ['600'], want: 600 },
  cache_max_negative_ttl: { yaml: '0', flag: ['0'], want: 0 },
  cache_stale: { yaml: '86400', flag: ['86400'], want: 86400 },
  cache_prefetch: { yaml: 'true', flag: ['true'], want: true },
  memory_plan: { yaml: '128', flag: ['128'], want: 128 },
  canary: { yaml: 'pass', flag: ['pass'], want: 'pass' },
  policy_server: { yaml: 'ps', flag: ['ps'], want: 'ps' },
  intercept_pools: { yaml: '["100.64.0.0/24"]', flag: ['100.64.0.0/24'], want: ['100.64.0.0/24'] },
  vici_socket: { yaml: '/tmp/c.vici', flag: ['/tmp/c.vici'], want: '/tmp/c.vici' },
  pin_root: { yaml: '/sys/fs/bpf/other', flag: ['/sys/fs/bpf/other'], want: '/sys/fs/bpf/other' },
  local_id: { yaml: 'router.test', flag: ['router.test'], want: 'router.test' },
  local_ts: { yaml: '["10.1.0.0/24", dynamic]', flag: ['10.1.0.0/24', 'dynamic'], want: ['10.1.0.0/24', 'dynamic'] },
  tls_relay: { yaml: '"127.0.0.1:9999"', flag: ['127.0.0.1:9999'], want: '127.0.0.1:9999' },
  // read (and checked) only when a tls channel or tls_accept uses them: test/config/tls-channels.test.ts
  tls_cert: { yaml: '/etc/dnsseal/node.crt', flag: ['/etc/dnsseal/node.crt'], want: '/etc/dnsseal/node.crt' },
  tls_key: { yaml: '/etc/dnsseal/node.key', flag: ['/etc/dnsseal/node.key'], want: '/etc/dnsseal/node.key' },
  tls_ca: { yaml: '/etc/dnsseal/ca.crt', flag: ['/etc/dnsseal/ca.crt'], want: '/etc/dnsseal/ca.crt' },
  tls_local_identity: { yaml: 'router.corp.test', flag: ['router.corp.test'], want: 'router.corp.test' },
};

const field = (c: Config, f: string) => (c as unknown as Record<string, unknown>)[f];

describe('config/settings', () => {
  test('has one YAML key, Config field and flag per setting', () => {
    const keys = SETTINGS.map((s) => s.key);
    const fields = VALUES.map((s) => s.field);
    const flagNames = SETTINGS.flatMap((s) => (s.kind === 'section' ? s.flags.map((f) => f.name) : s.flag ? [s.flag.name] : []));
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(fields).size).toBe(fields.length);
    expect(new Set(flagNames).size).toBe(flagNames.length);
  });

  test.each(VALUES.filter((s) => s.required).map((s) => [s.key, s.field, s.default] as const))('gives %s its default when neither the file nor a flag sets it', (_key, f, def) => {
    expect(field(loadConfigText(BASE, 'c.yaml', new Map(), deps()), f)).toEqual(def);
  });

  test.each(VALUES.filter((s) => !s.required && s.default === undefined).map((s) => [s.key, s.field] as const))('leaves %s unset when nothing sets it', (_key, f) => {
    expect(f in loadConfigText(BASE, 'c.yaml', new Map(), deps())).toBe(false);
  });

  test.each(Object.keys(SAMPLES))('reads %s the same from the file and from its flag', (key) => {
    const s = VALUES.find((v) => v.key === key)!;
    const sample = SAMPLES[key]!;
    const fromFile = loadConfigText(`${BASE}${sample.extra ?? ''}${key}: ${sample.yaml}\n`, 'c.yaml', new Map(), deps());
    const fromFlag = loadConfigText(`${BASE}${sample.extra ?? ''}`, 'c.yaml', new Map([[s.flag!.name, sample.flag]]), deps());
    expect(field(fromFile, s.field)).toEqual(sample.want);
    expect(field(fromFlag, s.field)).toEqual(sample.want);
  });

  test('has a sample for every value setting that has a flag', () => {
    expect(VALUES.filter((s) => s.flag && !SAMPLES[s.key]).map((s) => s.key)).toEqual([]);
  });

  test.each([
    ['metrics', 'metrics: off\n', ['metrics', 'off']],
    ['local_id', 'local_id: null\n', ['local-id', 'router.test']],
    ['upstream_source', 'upstream_source: null\n', ['upstream-source', '192.0.2.1']],
  ] as const)('unsets %s from the file, and a flag sets it again', (key, text, [flag, value]) => {
    const f = VALUES.find((s) => s.key === key)!.field;
    expect(f in loadConfigText(`${BASE}${text}`, 'c.yaml', new Map(), deps())).toBe(false);
    const c = loadConfigText(`${BASE}${text}`, 'c.yaml', flags([flag, value]), deps());
    expect(field(c, f)).toEqual(value === 'off' ? undefined : value);
  });

  test('names the flag and says what to write when --metrics gets a port alone', () => {
    expect(() => loadConfigText(BASE, 'c.yaml', flags(['metrics', '9153']), deps())).toThrow('--metrics: "9153" is a port alone: give ADDR:PORT (e.g. 127.0.0.1:9153), or off');
  });

  test('reports a wrongly typed listen item at its line without repeating the key', () => {
    let err: unknown;
    try {
      loadConfigText(`${BASE}listen:\n  - [a]\n`, 'c.yaml', new Map(), deps());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe('c.yaml:5: listen must be a non-empty string');
  });

  test('types the Config fields from the table', () => {
    const c = loadConfigText(BASE, 'c.yaml', new Map(), deps());
    const mode: 'host' | 'gateway' | 'intercept' = c.mode;
    const hold: number = c.minHoldS;
    const metrics: string | undefined = c.metrics;
    // @ts-expect-error an unknown mode is not a Config mode
    const wrong: Config['mode'] = 'router';
    expect([mode, hold, metrics, wrong]).toEqual(['host', 60, undefined, 'router']);
  });
});
