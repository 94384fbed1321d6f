/**
 * Certificates for the DoT/DoH tests, from the shared test PKI (test/tls/pki.ts: openssl at
 * test time, ECDSA P-256, two days): a server certificate for `names` issued by the test CA,
 * and a "rogue" one for the same names issued by an unrelated CA nobody configured.
 */
import { TestPki } from '../tls/pki.ts';

export interface TestCerts {
  dir: string;
  /** PEM of the test CA: pass as `ca` to trust it. */
  ca: string;
  /** Issued by the CA for `names`. */
  key: string;
  cert: string;
  keyPath: string;
  certPath: string;
  /** For the same names, issued by the unrelated CA. */
  rogueKey: string;
  rogueCert: string;
  cleanup(): void;
}

export function haveOpenssl(): boolean {
  return Bun.which('openssl') !== null;
}

export function makeCerts(names: string[] = ['dns.test']): TestCerts {
  const pki = new TestPki();
  const sans = names.map((n) => (/^[0-9.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`));
  const server = pki.leaf('server', sans);
  pki.leaf('rogue', sans, 'otherca');
  return {
    dir: pki.dir,
    ca: pki.text('ca.crt'),
    key: pki.text('server.key'),
    cert: pki.text('server.crt'),
    keyPath: server.key,
    certPath: server.cert,
    rogueKey: pki.text('rogue.key'),
    rogueCert: pki.text('rogue.crt'),
    cleanup: () => pki.cleanup(),
  };
}
