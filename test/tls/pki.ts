/**
 * Test certificates made at test time with Debian's openssl, ECDSA P-256: a CA, a second
 * unrelated CA, and leaf certificates (serverAuth + clientAuth) with the given DNS SANs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCredentials } from '../../src/tls/credentials.ts';
import type { TlsCredentials } from '../../src/tls/types.ts';

function run(argv: string[], cwd: string): void {
  const r = Bun.spawnSync(argv, { cwd, stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr.toString()}`);
}

export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'dnsseal-tls-pki-'));

  constructor() {
    this.ca('ca', 'dnsseal test CA');
    this.ca('otherca', 'unrelated test CA');
  }

  private ca(name: string, cn: string): void {
    run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
      '-subj', `/CN=${cn}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], this.dir);
  }

  /** A leaf signed by `ca` with SAN entries like `DNS:peer.partner.test` or `IP:127.0.0.1`. */
  leaf(name: string, sans: string[], ca = 'ca', days = 2): { cert: string; key: string } {
    const d = this.dir;
    run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`], d);
    writeFileSync(join(d, `${name}.ext`), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
    ].join('\n') + '\n');
    run(['openssl', 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', String(days), '-out', `${name}.crt`, '-extfile', `${name}.ext`], d);
    return { cert: join(d, `${name}.crt`), key: join(d, `${name}.key`) };
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  text(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8');
  }

  /** Checked credentials of leaf `name`, trusting `trust` (the CA that signs the other side). */
  creds(name: string, trust = 'ca'): TlsCredentials {
    const files = { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`), ca: this.path(`${trust}.crt`) };
    return checkCredentials({ cert: this.text(`${name}.crt`), key: this.text(`${name}.key`), ca: this.text(`${trust}.crt`) }, files, { nowMs: Date.now() });
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The set the TLS tests use. */
export function standardPki(): TestPki {
  const pki = new TestPki();
  pki.leaf('peer', ['DNS:peer.partner.test']);
  pki.leaf('impostor', ['DNS:other.partner.test']);
  pki.leaf('wildcard', ['DNS:*.partner.test']);
  pki.leaf('hub', ['DNS:hub.corp.test']);
  pki.leaf('router', ['DNS:router.corp.test']);
  pki.leaf('stranger', ['DNS:stranger.corp.test']);
  pki.leaf('foreign', ['DNS:router.corp.test'], 'otherca');
  return pki;
}
