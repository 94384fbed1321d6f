/**
 * `--tsig-key` on the node (#5): the inline form `NAME:hmac-sha256:BASE64` and the
 * file form `NAME=FILE` both give the key the policy-server upstream signs with.
 */
import { describe, expect, test } from 'bun:test';
import { parseArgs } from '../../src/config/flags.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { deps } from '../config/fixtures.ts';
import { SECRET } from './helpers.ts';

const SECRET_BYTES = new Uint8Array(Buffer.from(SECRET, 'base64'));
const FILES = { 'fleet.key': `${SECRET}\n`, 'odd:name.key': `${SECRET}\n` };

function load(...argv: string[]) {
  const a = parseArgs(['run', '--upstream', 'policy=192.0.2.9,tsig-key=fleet', '--policy-server', 'policy', ...argv]);
  return loadConfig(a.values, deps(FILES));
}

function loadError(...argv: string[]): string {
  try {
    load(...argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config/tsig-key flag', () => {
  test.each([
    ['inline', `fleet:hmac-sha256:${SECRET}`],
    ['inline, algorithm in capitals', `fleet:HMAC-SHA256:${SECRET}`],
    ['file', 'fleet=fleet.key'],
  ])('gives the policy-server upstream its key when the flag is in the %s form', (_form, value) => {
    const c = load('--tsig-key', value);
    expect(c.tsigKeys).toEqual([{ name: 'fleet', algorithm: 'hmac-sha256', secret: SECRET_BYTES }]);
    expect(c.upstreams.find((u) => u.name === 'policy')?.tsigKey).toBe('fleet');
    expect(c.policyServer).toBe('policy');
  });

  test('reads a file when an "=" comes before any ":"', () => {
    const c = load('--tsig-key', 'fleet=odd:name.key');
    expect(c.tsigKeys[0]!.secret).toEqual(SECRET_BYTES);
  });

  test.each([
    [`fleet:hmac-md5:${SECRET}`, 'algorithm "hmac-md5" is not supported'],
    ['fleet:hmac-sha256:not base64!', 'secret is not valid base64'],
    ['fleet:hmac-sha256:c2hvcnQ=', 'secret is 5 octets'],
    [`bad name:hmac-sha256:${SECRET}`, 'is not a DNS name'],
    ['fleet:hmac-sha256', 'expected NAME:hmac-sha256:BASE64'],
    ['fleet', 'is not NAME=FILE or NAME:hmac-sha256:BASE64'],
  ])('refuses %p naming the flag', (value, message) => {
    const m = loadError('--tsig-key', value);
    expect(m).toStartWith('--tsig-key');
    expect(m).toContain(message);
    // the secret never shows in a message
    expect(m).not.toContain(SECRET);
  });
});
