/**
 * Our certificate, key and CA from PEM files, checked before anything listens or connects:
 * the files parse, the key belongs to the certificate, the certificate is valid now, it holds
 * the configured local identity as a DNS SAN, and the CA file holds a CA certificate. Errors
 * say which file and what to do; key material never appears in a message.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readTextFile } from '../util/text-file.ts';
import { DnssealError } from '../util/errors.ts';
import { certDnsNames, identityMatches } from './san.ts';
import type { TlsCredentials } from './types.ts';

export interface CredentialFiles {
  /** Our certificate chain, PEM (leaf first). */
  cert: string;
  /** Our private key, PEM (unencrypted; ECDSA P-256 or RSA). */
  key: string;
  /** The CA certificate(s) that sign the other side's certificates, PEM. */
  ca: string;
}

export interface CredentialOptions {
  /** The name our certificate must hold (`local_identity`); unset: any of its DNS SANs. */
  localIdentity?: string;
  /** Wall-clock ms (tests pass a fixed time). */
  nowMs: number;
  /** Reads a file as text (tests pass an in-memory map). */
  readText?: (path: string) => string;
}

/** Which input a credential problem is about, so a config loader can point at its line. */
export type CredentialField = 'cert' | 'key' | 'ca' | 'local_identity';

export class CredentialError extends DnssealError {
  constructor(
    readonly field: CredentialField,
    code: string,
    message: string,
    cause?: unknown,
  ) {
    super('tls', code, message, { cause });
    this.name = 'CredentialError';
  }
}

function fail(field: CredentialField, code: string, message: string, cause?: unknown): never {
  throw new CredentialError(field, code, message, cause);
}

function firstCert(pem: string, what: string, field: CredentialField): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    return fail(field, 'cred_invalid', `${what} is not a PEM certificate`, err);
  }
}

/** Checks PEM texts already in memory; `where` names their files for messages. */
export function checkCredentials(pem: { cert: string; key: string; ca: string }, where: CredentialFiles, opts: CredentialOptions): TlsCredentials {
  const cert = firstCert(pem.cert, `certificate ${where.cert}`, 'cert');
  let key;
  try {
    key = createPrivateKey(pem.key);
  } catch (err) {
    return fail('key', 'cred_invalid', `key ${where.key} is not an unencrypted PEM private key`, err);
  }
  if (!cert.checkPrivateKey(key)) fail('key', 'cred_key_mismatch', `key ${where.key} does not belong to certificate ${where.cert}`);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (!(from <= opts.nowMs && opts.nowMs <= to)) {
    fail('cert', 'cred_expired', `certificate ${where.cert} is not valid now (valid from ${cert.validFrom} to ${cert.validTo}); renew it`);
  }
  const names = certDnsNames(new Uint8Array(cert.raw));
  if (names === null) fail('cert', 'cred_invalid', `certificate ${where.cert} has a malformed subjectAltName`);
  if (names.length === 0) fail('cert', 'cred_identity', `certificate ${where.cert} holds no DNS name (subjectAltName DNS:...); the other side checks that name`);
  if (opts.localIdentity !== undefined && !identityMatches(opts.localIdentity, names)) {
    fail('local_identity', 'cred_identity', `certificate ${where.cert} does not hold local_identity ${opts.localIdentity} as a DNS SAN (it holds ${names.join(', ')})`);
  }
  const ca = firstCert(pem.ca, `CA ${where.ca}`, 'ca');
  if (!ca.ca) fail('ca', 'cred_invalid', `${where.ca} is not a CA certificate (basicConstraints CA:TRUE)`);
  return { certPem: pem.cert, keyPem: pem.key, caPem: pem.ca, names };
}

/** Reads and checks the three files. */
export function loadCredentials(files: CredentialFiles, opts: CredentialOptions): TlsCredentials {
  const read = opts.readText ?? readTextFile;
  const text = (field: CredentialField, path: string, what: string) => {
    try {
      return read(path);
    } catch (err) {
      return fail(field, 'cred_unreadable', `cannot read ${what} ${path}: ${(err as Error).message}`, err);
    }
  };
  return checkCredentials({ cert: text('cert', files.cert, 'certificate'), key: text('key', files.key, 'key'), ca: text('ca', files.ca, 'CA') }, files, opts);
}
