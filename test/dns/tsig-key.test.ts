import { describe, expect, test } from 'bun:test';
import { StaticKeyring, decodeBase64Strict, parseTsigKeyFlag } from '../../src/dns/tsig-key.ts';

const SECRET = 'aZFBb8ATM1SU/ydExglh5tJ2yM/5KvGnX8MeIxbKK7U=';

describe('dns/tsig-key', () => {
  test('parses NAME:hmac-sha256:BASE64 when the flag is well formed', () => {
    const k = parseTsigKeyFlag(`Policy-Key.Example.:HMAC-SHA256:${SECRET}`);
    expect(k.name).toBe('policy-key.example');
    expect(k.algorithm).toBe('hmac-sha256');
    expect(Buffer.from(k.secret).toString('base64')).toBe(SECRET);
  });

  test.each([
    ['no colons', 'policy', /expected NAME:hmac-sha256:BASE64/],
    ['one colon', 'policy:hmac-sha256', /expected NAME:hmac-sha256:BASE64/],
    ['a bad name', `po licy:hmac-sha256:${SECRET}`, /not a DNS name/],
    ['hmac-md5', `policy:hmac-md5:${SECRET}`, /not supported; use hmac-sha256/],
    ['bad base64', 'policy:hmac-sha256:not*base64', /not valid base64/],
    ['a short secret', 'policy:hmac-sha256:AAAAAAAAAAAAAAAAAAAA', /at least 16/],
  ])('refuses %s with a message naming --tsig-key', (_n, value, re) => {
    expect(() => parseTsigKeyFlag(value)).toThrow(re);
    expect(() => parseTsigKeyFlag(value)).toThrow(/^--tsig-key: /);
  });

  test('never puts the secret into an error message when refusing', () => {
    try {
      parseTsigKeyFlag('policy:hmac-md5:c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhay0xMjM0');
    } catch (e) {
      expect(String((e as Error).message)).not.toContain('c2VjcmV0');
    }
  });

  test('looks keys up case-insensitively and refuses duplicates when building a keyring', () => {
    const a = parseTsigKeyFlag(`a.example:hmac-sha256:${SECRET}`);
    const ring = new StaticKeyring([a]);
    expect(ring.get('A.Example.')?.name).toBe('a.example');
    expect(ring.get('b.example')).toBeUndefined();
    expect(() => new StaticKeyring([a, { ...a, name: 'A.EXAMPLE' }])).toThrow(/defined twice/);
  });

  test.each(['', 'abc', 'ab==cd==', 'YWJj\n', 'YW Jj'])('refuses %p as strict base64', (s) => {
    expect(decodeBase64Strict(s)).toBeUndefined();
  });
});
