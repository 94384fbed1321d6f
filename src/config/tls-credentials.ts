/**
 * The certificate material of TLS channels and of `tls_accept`, read and checked at load
 * (finalize.ts), so a missing file, an unreadable or encrypted key, a key of another
 * certificate, an expired certificate or one that does not hold the local identity stops the
 * start (and `dnsseal check`) with the line that named it — not the first connection.
 *
 * Each of cert, key, ca and the local identity is the channel's (or the section's) own, else
 * the global `tls_cert`, `tls_key`, `tls_ca`, `tls_local_identity`. Channels that end up with
 * the same files are loaded once and a problem is reported once, naming every channel.
 */
import type { ChannelSpec } from '../policy/types.ts';
import { CredentialError, loadCredentials, type CredentialField } from '../tls/credentials.ts';
import type { TlsCredentials } from '../tls/types.ts';
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Draft } from './draft.ts';
import type { SettingsConfig, TlsAcceptSpec } from './types.ts';

export interface CredentialDeps {
  /** Reads a file or throws (the loader's file access). */
  readFile?(path: string): string;
  /** Wall-clock ms the certificates must be valid at (default: now). */
  nowMs?(): number;
}

/** One input of a credential set: its value and where it was given. */
interface Given {
  value: string;
  where: string;
}

interface Wanted {
  cert: Given;
  key: Given;
  ca: Given;
  localIdentity?: Given;
}

const GLOBAL_KEYS = { cert: 'tls_cert', key: 'tls_key', ca: 'tls_ca', local_identity: 'tls_local_identity' } as const;
const WHAT = { cert: 'our certificate', key: 'our private key', ca: 'the CA the other side must chain to' } as const;

/**
 * `own(field)`: the channel's / section's own value and its location, if set. Reports what is
 * missing (with `where`, naming `who`) and returns null then.
 */
function wanted(v: SettingsConfig, globalWhere: (key: string) => string, who: string, where: string, own: (f: CredentialField) => Given | undefined, report: (e: ConfigError) => void): Wanted | null {
  const globals: Record<CredentialField, string | undefined> = { cert: v.tlsCert, key: v.tlsKey, ca: v.tlsCa, local_identity: v.tlsLocalIdentity };
  const pick = (f: CredentialField): Given | undefined => {
    const mine = own(f);
    if (mine) return mine;
    const g = globals[f];
    return g === undefined ? undefined : { value: g, where: globalWhere(GLOBAL_KEYS[f]) };
  };
  const missing = (['cert', 'key', 'ca'] as const).filter((f) => pick(f) === undefined);
  if (missing.length > 0) {
    if (where.startsWith('--')) {
      // given by a flag: say it in flag syntax (`--channel p=tls-peer,cert=PATH`, `--tls-cert PATH`)
      const how = missing.map((f) => `${f}=PATH (${WHAT[f]})`).join(', ');
      report(new ConfigError(where, `${who} needs ${how} in ${where}, or ${missing.map((f) => `--${GLOBAL_KEYS[f].replace(/_/g, '-')} PATH`).join(', ')}`));
      return null;
    }
    const how = missing.map((f) => `"${f}: PATH" (${WHAT[f]})`).join(', ');
    report(new ConfigError(where, `${who} needs ${how} here or ${missing.map((f) => GLOBAL_KEYS[f]).join(', ')} globally`));
    return null;
  }
  const out: Wanted = { cert: pick('cert')!, key: pick('key')!, ca: pick('ca')! };
  const id = pick('local_identity');
  if (id) out.localIdentity = id;
  return out;
}

/** Loads each distinct set once; a problem goes to the line of the input it is about. */
class Loader {
  private readonly done = new Map<string, { creds?: TlsCredentials; users: string[]; err?: CredentialError; w: Wanted }>();

  constructor(private readonly deps: CredentialDeps) {}

  load(w: Wanted, who: string): () => TlsCredentials | undefined {
    const k = JSON.stringify([w.cert.value, w.key.value, w.ca.value, w.localIdentity?.value ?? null]);
    let slot = this.done.get(k);
    if (!slot) {
      slot = { users: [], w };
      try {
        slot.creds = loadCredentials(
          { cert: w.cert.value, key: w.key.value, ca: w.ca.value },
          {
            nowMs: this.deps.nowMs?.() ?? Date.now(),
            ...(w.localIdentity ? { localIdentity: w.localIdentity.value } : {}),
            ...(this.deps.readFile ? { readText: this.deps.readFile } : {}),
          },
        );
      } catch (err) {
        if (!(err instanceof CredentialError)) throw err;
        slot.err = err;
      }
      this.done.set(k, slot);
    }
    slot.users.push(who);
    const s = slot;
    return () => s.creds;
  }

  report(report: (e: ConfigError) => void): void {
    for (const s of this.done.values()) {
      if (!s.err) continue;
      const f = s.err.field;
      const at = f === 'local_identity' ? (s.w.localIdentity?.where ?? s.w.cert.where) : s.w[f].where;
      report(new ConfigError(at, `${s.users.join(', ')}: ${errorMessage(s.err).replace(/^tls: /, '')}`, { cause: s.err }));
    }
  }
}

/**
 * The credentials of every tls channel (by name) and the `tls_accept` spec; problems are
 * reported, not thrown, so they come out with the rest of the configuration's.
 */
export function tlsMaterial(
  v: SettingsConfig,
  d: Draft,
  channels: ChannelSpec[],
  globalWhere: (key: string) => string,
  deps: CredentialDeps,
  report: (e: ConfigError) => void,
): { tlsCredentials?: Record<string, TlsCredentials>; tlsAccept?: TlsAcceptSpec } {
  const loader = new Loader(deps);
  const pending: Array<[string, () => TlsCredentials | undefined]> = [];
  for (const spec of channels) {
    if (spec.protocol !== 'tls') continue;
    const dc = d.channels.get(spec.name)!;
    const own = (f: CredentialField): Given | undefined => {
      const value = f === 'local_identity' ? spec.localIdentity : spec[f];
      return value === undefined ? undefined : { value, where: dc.where(f) };
    };
    const who = `channel "${spec.name}"`;
    const w = wanted(v, globalWhere, `${who} (protocol tls)`, dc.where(''), own, report);
    if (w) pending.push([spec.name, loader.load(w, who)]);
  }
  let accept: (() => TlsAcceptSpec | undefined) | undefined;
  const ta = d.tlsAccept;
  if (ta) {
    const own = (f: CredentialField): Given | undefined => {
      const value = f === 'local_identity' ? ta.localIdentity : ta.files[f];
      return value === undefined ? undefined : { value, where: ta.where(f) };
    };
    const w = wanted(v, globalWhere, 'tls_accept', ta.where(''), own, report);
    if (w) {
      const creds = loader.load(w, 'tls_accept');
      accept = () => {
        const c = creds();
        return c && { listen: ta.listen, credentials: c, clients: ta.clients, limits: ta.limits };
      };
    }
  }
  loader.report(report);
  const out: { tlsCredentials?: Record<string, TlsCredentials>; tlsAccept?: TlsAcceptSpec } = {};
  if (pending.length > 0) {
    out.tlsCredentials = {};
    for (const [name, get] of pending) {
      const c = get();
      if (c) out.tlsCredentials[name] = c;
    }
  }
  const a = accept?.();
  if (a) out.tlsAccept = a;
  return out;
}
