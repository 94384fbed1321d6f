/**
 * Test certificates made with openssl at test time (nothing secret is checked in): a test CA,
 * a server certificate it issued for `dns.test` (and any other names asked for), and a
 * self-signed certificate for `dns.test` from no CA anyone trusts. ECDSA P-256, valid two days.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** PEM of the test CA: pass as `ca` to trust it. */
  ca: string;
  /** Issued by the CA for `names`. */
  key: string;
  cert: string;
  keyPath: string;
  certPath: string;
  /** Self-signed for the same names, not issued by the CA. */
  rogueKey: string;
  rogueCert: string;
  cleanup(): void;
}

export function haveOpenssl(): boolean {
  return Bun.which('openssl') !== null;
}

function openssl(args: string[]): void {
  const r = Bun.spawnSync(['openssl', ...args], { stdout: 'ignore', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
}

export function makeCerts(names: string[] = ['dns.test']): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-tls-'));
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=dnsseal test CA']);
  openssl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${names[0]}`]);
  writeFileSync(p('ext'), `subjectAltName=${names.map((n) => (/^[0-9.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\n`);
  openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext')]);
  openssl(['req', '-x509', ...ec, '-keyout', p('rogue.key'), '-out', p('rogue.pem'), '-days', '2', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=DNS:${names[0]}`]);
  const read = (f: string) => readFileSync(p(f), 'utf8');
  return {
    dir,
    ca: read('ca.pem'),
    key: read('server.key'),
    cert: read('server.pem'),
    keyPath: p('server.key'),
    certPath: p('server.pem'),
    rogueKey: read('rogue.key'),
    rogueCert: read('rogue.pem'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
