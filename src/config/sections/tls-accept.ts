/**
 * `tls_accept:` — the accepting side of TLS channels (src/tls/acceptor.ts) in the same daemon:
 * where it listens, its certificate, and per client identity what it may connect to. A hub
 * runs it next to its own rules; a peer that only accepts runs `dnsseal run` with this section,
 * `datapath: none` and no rules. File only (a list of clients with allow-lists is no flag).
 *
 *   tls_accept:
 *     listen: ["0.0.0.0:9853"]
 *     cert: /etc/dnsseal/hub.crt         # default tls_cert (and key, ca, local_identity likewise)
 *     clients:
 *       - identity: router.corp.example  # a DNS name of the client certificate, or "*"
 *         allow:
 *           - {cidrs: [198.51.100.0/24], ports: [443]}
 *           - {names: ["*.corp.example"]}
 *
 * The allow-lists are compiled here (AcceptPolicy) so a bad entry is reported at its line; the
 * certificate files are read and checked with the channels' (tls-credentials.ts).
 */
import { DEFAULT_ACCEPT_LIMITS, type AcceptLimits } from '../../tls/acceptor.ts';
import { AcceptPolicy, type AllowInput, type ClientInput } from '../../tls/accept-policy.ts';
import { DEFAULT_TLS_PORT } from '../../policy/channel.ts';
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { hostPortList } from '../value-types.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import type { KeyPath } from '../yaml-locator.ts';

/** YAML key of each limit, its AcceptLimits field, bounds and unit. */
const LIMITS: Array<{ key: string; field: keyof AcceptLimits; min: number; max: number; unit: string; doc: string }> = [
  { key: 'handshake_timeout', field: 'handshakeTimeoutMs', min: 100, max: 120_000, unit: 'milliseconds', doc: 'TCP accept → verified client certificate; then the connection is closed.' },
  { key: 'request_timeout', field: 'requestTimeoutMs', min: 100, max: 120_000, unit: 'milliseconds', doc: 'Verified client → its complete CONNECT head; then 408.' },
  { key: 'connect_timeout', field: 'connectTimeoutMs', min: 100, max: 120_000, unit: 'milliseconds', doc: 'The onward TCP connect to the destination; then 504.' },
  { key: 'max_connections', field: 'maxConnections', min: 1, max: 1_000_000, unit: 'connections', doc: 'All connections together (the oldest unauthenticated one is evicted for a new one).' },
  { key: 'max_pending', field: 'maxPending', min: 1, max: 1_000_000, unit: 'connections', doc: 'Connections still in their handshake; a new one evicts the oldest, so an idle flood only pushes itself out.' },
  { key: 'max_per_client', field: 'maxPerClient', min: 1, max: 1_000_000, unit: 'connections', doc: 'Connections per client identity; beyond it 429.' },
];

export const TLS_ACCEPT_DEFAULT_LISTEN = [`0.0.0.0:${DEFAULT_TLS_PORT}`];

export const TLS_ACCEPT_FIELDS: FieldDoc[] = [
  { key: 'listen', type: 'list of ADDR:PORT', default: `\`[${TLS_ACCEPT_DEFAULT_LISTEN.join(', ')}]\``, doc: 'Where the accepting side listens for relays (`[::]:9853` takes IPv6 too).' },
  { key: 'cert', type: 'path', default: '`tls_cert`', doc: 'Our certificate (PEM, leaf first), presented to the relays; must hold `local_identity` — the name their channel `identity` names.' },
  { key: 'key', type: 'path', default: '`tls_key`', doc: 'Its unencrypted PEM private key.' },
  { key: 'ca', type: 'path', default: '`tls_ca`', doc: 'The CA that signs the relays\' (client) certificates; a client certificate of any other CA is refused in the handshake.' },
  { key: 'local_identity', type: 'DNS name', default: '`tls_local_identity`', doc: 'A name our certificate must hold (checked at load).' },
  {
    key: 'clients',
    type: 'list of {identity, allow}',
    doc:
      'Required: who may connect where — never an open proxy. `identity`: a DNS name of the client certificate (exact), or `*` for any client the CA vouches for; the first entry that matches a client applies. ' +
      '`allow`: a list of `{cidrs, names, ports}`; a destination is allowed when one entry allows it: its address in one of `cidrs`, or its name (the relay\'s `Dnsseal-Name`) matching one of `names` (rule patterns) **and** the address being one that name resolves to here; and its port in `ports` (numbers or `LOW-HIGH`; unset: any). An entry needs `cidrs` or `names`.',
  },
  ...LIMITS.map((l) => ({ key: l.key, type: `${l.unit} (${l.min}–${l.max})`, default: `\`${DEFAULT_ACCEPT_LIMITS[l.field]}\``, doc: l.doc })),
];

export interface DraftTlsAccept {
  listen: string[];
  files: { cert?: string; key?: string; ca?: string };
  localIdentity?: string;
  clients: ClientInput[];
  limits: AcceptLimits;
  /** Where a field was set (`''` = the section). */
  where: (field: string) => string;
}

const CLIENT_KEYS = ['identity', 'allow'];
const ALLOW_KEYS = ['cidrs', 'names', 'ports'];

export function readTlsAccept(v: unknown, doc: YamlDoc, d: Draft): void {
  const base: KeyPath = ['tls_accept'];
  if (!isObj(v)) doc.fail(base, 'must be a mapping {listen, cert, key, ca, local_identity, clients, …}');
  doc.checkKeys(v, base, TLS_ACCEPT_FIELDS.map((f) => f.key));
  const at = (...p: KeyPath) => [...base, ...p];
  const listen = v.listen === undefined ? [...TLS_ACCEPT_DEFAULT_LISTEN] : (hostPortList('list of ADDR:PORT').yaml(v.listen, doc, at('listen'), 'listen') ?? []);
  const files: DraftTlsAccept['files'] = {};
  for (const k of ['cert', 'key', 'ca'] as const) if (v[k] !== undefined) files[k] = doc.str(v[k], at(k), k);
  const limits = { ...DEFAULT_ACCEPT_LIMITS };
  for (const l of LIMITS) if (v[l.key] !== undefined) limits[l.field] = doc.int(v[l.key], at(l.key), l.min, l.max, l.unit);
  const clients = readClientList(v.clients, doc, at('clients'));
  const out: DraftTlsAccept = { listen, files, clients, limits, where: (f) => doc.at(f ? at(f) : base) };
  if (v.local_identity !== undefined) out.localIdentity = doc.str(v.local_identity, at('local_identity'), 'local_identity');
  d.tlsAccept = out;
}

/** The clients list, shape-checked and compiled (AcceptPolicy), each problem at its line. */
function readClientList(v: unknown, doc: YamlDoc, path: KeyPath): ClientInput[] {
  if (v === undefined || v === null) doc.fail(path.slice(0, -1), 'needs "clients:": who may connect, and where to (nothing is allowed otherwise)');
  if (!Array.isArray(v) || v.length === 0) doc.fail(path, 'must be a non-empty list of {identity, allow}');
  const out = v.map((c: unknown, i: number): ClientInput => {
    const p = [...path, i];
    if (!isObj(c)) doc.fail(p, 'a client is {identity: NAME or "*", allow: [...]}');
    doc.checkKeys(c, p, CLIENT_KEYS);
    const identity = doc.str(c.identity, [...p, 'identity'], 'identity');
    if (!Array.isArray(c.allow)) doc.fail([...p, 'allow'], 'allow must be a list of {cidrs, names, ports}');
    const allow = c.allow.map((e: unknown, j: number): AllowInput => {
      const q = [...p, 'allow', j];
      if (!isObj(e)) doc.fail(q, 'an allow entry is {cidrs: [...], names: [...], ports: [...]}');
      doc.checkKeys(e, q, ALLOW_KEYS);
      const entry: AllowInput = {};
      if (e.cidrs !== undefined) entry.cidrs = doc.strList(e.cidrs, [...q, 'cidrs'], 'a CIDR');
      if (e.names !== undefined) entry.names = doc.strList(e.names, [...q, 'names'], 'a name pattern');
      if (e.ports !== undefined) {
        const ports = Array.isArray(e.ports) ? e.ports : [e.ports];
        entry.ports = ports.map((x: unknown, k: number) => {
          if (typeof x !== 'number' && typeof x !== 'string') doc.fail(Array.isArray(e.ports) ? [...q, 'ports', k] : [...q, 'ports'], 'a port is a number or LOW-HIGH');
          return x;
        });
      }
      return entry;
    });
    return { identity, allow };
  });
  AcceptPolicy.compile(out, (message, client, allow) => doc.fail(client === null ? path : allow === undefined ? [...path, client] : [...path, client, 'allow', allow], message));
  return out;
}
