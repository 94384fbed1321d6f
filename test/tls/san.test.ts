import { afterAll, describe, expect, test } from 'bun:test';
import { X509Certificate } from 'node:crypto';
import { certDnsNames, identityMatches } from '../../src/tls/san.ts';
import { TestPki } from './pki.ts';

const pki = new TestPki();
afterAll(() => pki.cleanup());
const der = (name: string) => new Uint8Array(new X509Certificate(pki.text(`${name}.crt`)).raw);

describe('tls/san', () => {
  test('the DNS SANs are read in order and other kinds are skipped', () => {
    pki.leaf('multi', ['DNS:a.example', 'IP:192.0.2.1', 'DNS:B.Example', 'email:x@y.example', 'DNS:*.w.example']);
    expect(certDnsNames(der('multi'))).toEqual(['a.example', 'B.Example', '*.w.example']);
  });

  test('a certificate without subjectAltName has no names when only its CN is set', () => {
    pki.leaf('cnonly', []);
    expect(certDnsNames(der('cnonly'))).toEqual([]);
  });

  test('every truncation of a certificate is refused without throwing', () => {
    pki.leaf('trunc', ['DNS:peer.partner.test']);
    const d = der('trunc');
    for (let n = 0; n < d.length; n++) expect(certDnsNames(d.subarray(0, n))).toBeNull();
  });

  test('random bit flips never throw', () => {
    pki.leaf('flip', ['DNS:peer.partner.test']);
    const d = der('flip');
    for (let i = 0; i < 3000; i++) {
      const m = d.slice();
      const at = Math.floor(Math.random() * m.length);
      m[at] = m[at]! ^ (1 << Math.floor(Math.random() * 8));
      const r = certDnsNames(m);
      expect(r === null || Array.isArray(r)).toBe(true);
    }
  });

  test.each([
    ['peer.partner.test', ['peer.partner.test'], true],
    ['PEER.partner.test.', ['peer.Partner.test'], true],
    ['peer.partner.test', ['other.partner.test', 'peer.partner.test'], true],
    ['peer.partner.test', ['*.partner.test'], false],
    ['*.partner.test', ['*.partner.test'], false],
    ['partner.test', ['peer.partner.test'], false],
    ['peer.partner.test', ['peer.partner.test.evil'], false],
    ['', [''], false],
  ])('identity %s against %j is %s', (want, names, ok) => {
    expect(identityMatches(want, names)).toBe(ok);
  });
});
