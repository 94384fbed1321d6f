/**
 * The part of charon's `load-conn` parser the fake mirrors: option names (swanctl.conf(5),
 * strongSwan 5.9) and proposal keywords, with charon's own messages
 * (`unknown option: X, config discarded`, `invalid value for: esp_proposals, config discarded`,
 * `invalid value for: local_ts, …` for a selector that is not an address, CIDR, range or `dynamic`).
 * Deliberately a subset: enough that a typo in what dnsseal sends fails in the unit tests
 * the way it fails against real charon.
 */
import { isIP } from '../util/ip.ts';
import type { ViciMessage } from './vici-codec.ts';

export const FAKE_KNOWN_EVENTS = new Set([
  'log', 'control-log', 'ike-updown', 'ike-rekey', 'ike-update', 'ike-state-established', 'ike-state-destroying',
  'child-updown', 'child-rekey', 'child-state-installing', 'child-state-installed', 'child-state-updating',
  'child-state-rekeying', 'child-state-rekeyed', 'child-state-deleting', 'child-state-destroying',
  'list-sa', 'list-policy', 'list-conn', 'list-cert', 'list-authority',
]);

const IKE_OPTIONS = new Set([
  'version', 'local_addrs', 'remote_addrs', 'local_port', 'remote_port', 'proposals', 'vips', 'aggressive',
  'pull', 'dscp', 'encap', 'mobike', 'dpd_delay', 'dpd_timeout', 'fragmentation', 'childless', 'send_certreq',
  'send_cert', 'ppk_id', 'ppk_required', 'keyingtries', 'unique', 'reauth_time', 'rekey_time', 'over_time',
  'rand_time', 'pools', 'if_id_in', 'if_id_out', 'mediation', 'mediated_by', 'mediation_peer', 'children',
]);

const AUTH_OPTIONS = new Set([
  'auth', 'id', 'eap_id', 'aaa_id', 'xauth_id', 'revocation', 'certs', 'cert', 'cacerts', 'cacert', 'pubkeys',
  'groups', 'cert_policy', 'ca_id', 'round',
]);

const CHILD_OPTIONS = new Set([
  'ah_proposals', 'esp_proposals', 'sha256_96', 'local_ts', 'remote_ts', 'rekey_time', 'life_time', 'rand_time',
  'rekey_bytes', 'life_bytes', 'rand_bytes', 'rekey_packets', 'life_packets', 'rand_packets', 'updown',
  'hostaccess', 'mode', 'policies', 'policies_fwd_out', 'dpd_action', 'ipcomp', 'inactivity', 'reqid',
  'priority', 'interface', 'mark_in', 'mark_in_sa', 'mark_out', 'set_mark_in', 'set_mark_out', 'label',
  'label_mode', 'tfc_padding', 'replay_window', 'hw_offload', 'copy_df', 'copy_ecn', 'copy_dscp',
  'start_action', 'close_action', 'if_id_in', 'if_id_out',
]);

/** One proposal keyword charon's proposal parser knows (encryption, integrity, PRF, DH, ESN). */
const KEYWORD = new RegExp(
  '^(?:' +
    [
      'default',
      'aes(?:128|192|256)?(?:ctr|ccm(?:8|12|16|64|96|128)|gcm(?:8|12|16|64|96|128)|gmac)?',
      'chacha20poly1305', '3des', 'des', 'null', 'camellia(?:128|192|256)?',
      '(?:prf)?(?:sha1|sha256|sha384|sha512|md5|aesxcbc|aescmac)',
      'sha256_96', 'sha1_160', 'aes(?:128|192|256)?gmac',
      'modp(?:768|1024|1536|2048|3072|4096|6144|8192|1024s160|2048s224|2048s256)',
      'ecp(?:192|224|256|384|521)', 'ecp(?:224|256|384|512)bp', 'curve25519', 'x25519', 'curve448', 'x448',
      'esn', 'noesn',
    ].join('|') +
    ')$',
);

function validProposal(p: unknown): boolean {
  return typeof p === 'string' && p.length > 0 && p.split('-').every((t) => KEYWORD.test(t.toLowerCase()));
}

/**
 * One traffic selector as charon's vici parser takes it: `dynamic`, an address, a CIDR or a
 * range `A-B`, optionally followed by `[proto/port]`. An interface name is refused.
 */
export function validTs(t: unknown): boolean {
  if (typeof t !== 'string') return false;
  const m = /^([^[\]]+)(?:\[[^\]]*\])?$/.exec(t);
  if (!m) return false;
  const body = m[1]!;
  if (body === 'dynamic') return true;
  const range = body.split('-');
  if (range.length === 2) return isIP(range[0]!) && isIP(range[1]!);
  const [addr, len, extra] = body.split('/');
  if (extra !== undefined || !isIP(addr!)) return false;
  return len === undefined || (/^[0-9]{1,3}$/.test(len) && Number(len) <= (addr!.includes(':') ? 128 : 32));
}

function checkSection(v: ViciMessage, known: Set<string>, proposals: string[], selectors: string[] = []): string | null {
  for (const [key, val] of Object.entries(v)) {
    if (!known.has(key)) return `unknown option: ${key}, config discarded`;
    if (proposals.includes(key) && !(Array.isArray(val) && val.every(validProposal)))
      return `invalid value for: ${key}, config discarded`;
    if (selectors.includes(key) && !(Array.isArray(val) && val.every(validTs))) return `invalid value for: ${key}, config discarded`;
  }
  return null;
}

/** Returns charon's errmsg for an invalid connection body, or null when it would load. */
export function validateConn(conn: ViciMessage): string | null {
  const ikeOnly: ViciMessage = {};
  for (const [key, val] of Object.entries(conn)) {
    if (/^(local|remote)(-.*)?$/.test(key)) {
      if (typeof val !== 'object' || Array.isArray(val) || val instanceof Uint8Array) return `invalid value for: ${key}, config discarded`;
      const err = checkSection(val, AUTH_OPTIONS, []);
      if (err) return err;
    } else if (key === 'children') {
      if (typeof val !== 'object' || Array.isArray(val) || val instanceof Uint8Array) return `invalid value for: children, config discarded`;
      for (const child of Object.values(val)) {
        if (typeof child !== 'object' || Array.isArray(child) || child instanceof Uint8Array) return `invalid value for: children, config discarded`;
        const err = checkSection(child, CHILD_OPTIONS, ['esp_proposals', 'ah_proposals'], ['local_ts', 'remote_ts']);
        if (err) return err;
      }
    } else {
      ikeOnly[key] = val;
    }
  }
  return checkSection(ikeOnly, IKE_OPTIONS, ['proposals']);
}
