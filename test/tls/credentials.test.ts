import { afterAll, describe, expect, test } from 'bun:test';
import { loadCredentials } from '../../src/tls/credentials.ts';
import { TestPki } from './pki.ts';

const pki = new TestPki();
pki.leaf('peer', ['DNS:peer.partner.test']);
pki.leaf('other', ['DNS:other.partner.test']);
afterAll(() => pki.cleanup());
const files = (cert: string, key = cert, ca = 'ca') => ({ cert: pki.path(`${cert}.crt`), key: pki.path(`${key}.key`), ca: pki.path(`${ca}.crt`) });

describe('tls/credentials', () => {
  test('good files load with their DNS names', () => {
    const c = loadCredentials(files('peer'), { nowMs: Date.now(), localIdentity: 'peer.partner.test' });
    expect(c.names).toEqual(['peer.partner.test']);
    expect(c.keyPem).toContain('PRIVATE KEY');
  });

  test.each([
    ['a key of another certificate', files('peer', 'other'), {}, 'cred_key_mismatch'],
    ['a local identity the certificate lacks', files('peer'), { localIdentity: 'hub.corp.test' }, 'cred_identity'],
    ['a leaf as CA', files('peer', 'peer', 'other'), {}, 'cred_invalid'],
    ['a missing file', { ...files('peer'), key: pki.path('nope.key') }, {}, 'cred_unreadable'],
    ['a certificate past its end', files('peer'), { nowMs: Date.now() + 10 * 86_400_000 }, 'cred_expired'],
  ])('%s is refused with a clear code', (_what, f, extra, code) => {
    let err: unknown;
    try {
      loadCredentials(f, { nowMs: Date.now(), ...extra });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe(code);
    expect((err as Error).message).toStartWith('tls: ');
    expect((err as Error).message).not.toContain('PRIVATE KEY');
  });

  test('a device is refused before it is read (/dev/zero would be read until memory runs out)', () => {
    expect(() => loadCredentials({ ...files('peer'), ca: '/dev/zero' }, { nowMs: Date.now() })).toThrow('cannot read CA /dev/zero: ENOTFILE: a device, not a file');
  });
});
