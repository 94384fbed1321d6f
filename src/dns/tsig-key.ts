/**
 * TSIG keys: the `--tsig-key NAME:hmac-sha256:BASE64` flag syntax and a keyring.
 * Secrets are never put into messages or logs; errors name the key, not its value.
 */
import { ConfigError } from '../util/errors.ts';
import type { Keyring, TsigKey } from './tsig.ts';

/** A validated TSIG key (`tsig_keys:` or `--tsig-key`), as the config carries it. */
export interface TsigKeySpec {
  /** Canonical: lower case, no trailing dot. */
  name: string;
  algorithm: 'hmac-sha256';
  /** Decoded secret. Never logged. */
  secret: Uint8Array;
}

const NAME_RE = /^(?=.{1,253}\.?$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Lower-case, no trailing dot: the form keys are compared in. */
export function canonicalKeyName(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

/** Decodes strict base64 (padding required, no whitespace) to bytes; undefined if invalid. */
export function decodeBase64Strict(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !B64_RE.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/**
 * Validates one key; `where` is `--tsig-key` or `file:line` for messages.
 * Secrets shorter than 16 octets are refused (RFC 8945 §6: at least as long as the hash
 * is recommended; 16 is the floor we accept, and it says so).
 */
export function makeTsigKey(name: string, algorithm: string, secretB64: string, where: string): TsigKeySpec {
  if (!NAME_RE.test(name)) throw new ConfigError(where, `TSIG key name ${JSON.stringify(name)} is not a DNS name`);
  if (algorithm.toLowerCase() !== 'hmac-sha256') {
    throw new ConfigError(where, `TSIG key ${name}: algorithm ${JSON.stringify(algorithm)} is not supported; use hmac-sha256`);
  }
  const secret = decodeBase64Strict(secretB64);
  if (!secret) throw new ConfigError(where, `TSIG key ${name}: secret is not valid base64`);
  if (secret.length < 16) {
    throw new ConfigError(where, `TSIG key ${name}: secret is ${secret.length} octets; use at least 16 (32 recommended, e.g. \`keymgr -t ${name} hmac-sha256\`)`);
  }
  return { name: canonicalKeyName(name), algorithm: 'hmac-sha256', secret };
}

/** Parses `NAME:hmac-sha256:BASE64` (the `--tsig-key` flag, same as `dig -y ALG:NAME:SECRET` reordered). */
export function parseTsigKeyFlag(value: string, where = '--tsig-key'): TsigKeySpec {
  const first = value.indexOf(':');
  const second = first < 0 ? -1 : value.indexOf(':', first + 1);
  if (first < 0 || second < 0) {
    throw new ConfigError(where, `expected NAME:hmac-sha256:BASE64, got ${JSON.stringify(value.replace(/:[^:]*$/, ':…'))}`);
  }
  return makeTsigKey(value.slice(0, first), value.slice(first + 1, second), value.slice(second + 1), where);
}

/** A keyring over configured keys; duplicate names are a config error. */
export class StaticKeyring implements Keyring {
  private readonly keys = new Map<string, TsigKey>();

  constructor(specs: readonly TsigKeySpec[], where = 'tsig_keys') {
    for (const s of specs) {
      const name = canonicalKeyName(s.name);
      if (this.keys.has(name)) throw new ConfigError(where, `TSIG key ${name} is defined twice`);
      this.keys.set(name, { name, algorithm: s.algorithm, secret: s.secret });
    }
  }

  get(name: string): TsigKey | undefined {
    return this.keys.get(canonicalKeyName(name));
  }

  names(): string[] {
    return [...this.keys.keys()];
  }
}
