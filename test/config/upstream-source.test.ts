import { describe, expect, test } from 'bun:test';
import { parseArgs } from '../../src/config/flags.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { deps, flags } from './fixtures.ts';

const BASE = `upstreams:
  default: 127.0.0.1:5300
`;

function load(text: string, f = new Map<string, string[]>()) {
  return loadConfig(new Map([...f, ['config', ['c.yaml']]]), deps({ 'c.yaml': text }));
}

function loadErr(text: string, f = new Map<string, string[]>()): string {
  try {
    load(text, f);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

describe('config/upstream_source', () => {
  test('is unset when neither the file nor a flag gives it', () => {
    const c = load(BASE);
    expect(c.upstreamSource).toBeUndefined();
    expect('upstreamSource' in c).toBe(false);
  });

  test('reads an IPv4 literal from the file', () => {
    expect(load(`${BASE}upstream_source: 127.0.0.2\n`).upstreamSource).toBe('127.0.0.2');
  });

  test('normalises an IPv6 literal when every upstream is IPv6', () => {
    const c = load('upstreams:\n  default: "[2001:db8::53]:53"\nupstream_source: "2001:DB8:0::1"\n');
    expect(c.upstreamSource).toBe('2001:db8::1');
  });

  test('lets the flag win over the file when both are given', () => {
    const c = load(`${BASE}upstream_source: 127.0.0.2\n`, flags(['upstream-source', '127.0.0.3']));
    expect(c.upstreamSource).toBe('127.0.0.3');
  });

  test('takes the flag from argv when written as --upstream-source ADDR', () => {
    const args = parseArgs(['run', '--config', 'none', '--upstream', '127.0.0.1:5300', '--upstream-source', '127.0.0.4']);
    expect(args.values.get('upstream-source')).toEqual(['127.0.0.4']);
    expect(loadConfig(args.values, deps()).upstreamSource).toBe('127.0.0.4');
  });

  test('clears the value when the file writes null', () => {
    expect(load(`${BASE}upstream_source: null\n`).upstreamSource).toBeUndefined();
  });

  test.each(['127.0.0.1:53', '[::1]', 'localhost', '127.0.0.256', '::ffff:127.0.0.1', 'fe80::1%lo', '10.0.0.0/8'])(
    'refuses %s in the file and names the key and line',
    (bad) => {
      const msg = loadErr(`${BASE}upstream_source: "${bad}"\n`);
      expect(msg).toStartWith('c.yaml:3: upstream_source: ');
      expect(msg).toContain('is not an IP address');
    },
  );

  test('refuses a non-IP flag value and names the flag', () => {
    expect(loadErr(BASE, flags(['upstream-source', 'myhost']))).toStartWith('--upstream-source: "myhost" is not an IP address');
  });

  test('refuses an IPv6 source when an upstream is IPv4 and names the key, its line and the upstream', () => {
    const msg = loadErr(`${BASE}upstream_source: "::1"\n`);
    expect(msg).toStartWith('c.yaml:3: upstream_source ::1 is IPv6 but upstream "default" server 127.0.0.1:5300 (c.yaml:2) is IPv4');
  });

  test('refuses an IPv4 source flag when one of several upstreams is IPv6 and names the flag', () => {
    const text = 'upstreams:\n  default: 127.0.0.1\n  v6: "[::1]:53"\n';
    const msg = loadErr(text, flags(['upstream-source', '127.0.0.2']));
    expect(msg).toStartWith('--upstream-source: upstream_source 127.0.0.2 is IPv4 but upstream "v6" server [::1]:53 (c.yaml:3) is IPv6');
    expect(msg).not.toContain('"default"');
  });

  test('checks the family against the resolv.conf upstream when none is configured', () => {
    const msg = loadErr('upstream_source: "::1"\n');
    expect(msg).toContain('upstream "default" server 192.0.2.53:53 (resolv.conf) is IPv4');
  });
});
