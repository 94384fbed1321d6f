/**
 * `channels:` (name → {protocol, kind, gateway, identity, local_identity, esp, negotiate,
 * negotiate_timeout, tls_port, cert, key, ca}) and `--channel NAME=SPEC`. The values are checked
 * once file and flags are merged (policy/channel.ts buildChannel, in finalize.ts; a tls
 * channel's certificate files in tls-credentials.ts), so both forms get the same checks.
 *
 * Flag heads: `peer`, `tunnel:GW` (IPsec, as always) and `tls-peer`, `tls-tunnel:HUB` (the
 * same kinds over TLS), then `,key=value` options named as the YAML keys.
 */
import { ConfigError } from '../../util/errors.ts';
import type { ChannelInput } from '../../policy/channel.ts';
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagOptions, flagPair } from './flag-text.ts';

export const CHANNEL_FIELDS: FieldDoc[] = [
  {
    key: 'protocol',
    type: '`ipsec` | `tls`',
    default: '`ipsec`',
    doc: '`ipsec`: IKEv2 and ESP through strongSwan. `tls`: TCP carried in mutual TLS 1.3 by dnsseal\'s relay to a dnsseal accepting side (`tls_accept`), one TLS connection per TCP connection; anything but TCP to a tls-channel address is dropped. With `datapath: ebpf` the kernel hands TCP to these addresses to the relay (host: connect hook; gateway: LAN ingress); the leak guard lets out only the relay\'s TLS.',
  },
  {
    key: 'kind',
    type: '`tunnel` | `peer`',
    doc: '`tunnel`: through a hub gateway (IPsec: tunnel mode to `gateway`; TLS: to the hub\'s accepting side, which connects onward). `peer`: straight to each resolved address (IPsec: IKE to it; TLS: to its `tls_port`).',
  },
  { key: 'gateway', type: 'IP or host name', doc: '`tunnel` only, required: the hub the traffic is tunnelled through.' },
  {
    key: 'identity',
    type: 'string',
    default: '`%name` (peer) / the gateway (tunnel)',
    doc: 'Identity the peer must prove with its certificate (the patent\'s "certificate ID"). `%name` = the name that was queried. TLS: a DNS name the peer certificate must hold as a DNS subjectAltName, exactly (no wildcard certificates); a `tls` tunnel through a gateway given as an address needs it.',
  },
  {
    key: 'local_identity',
    type: 'string',
    default: '`local_id` (ipsec) / `tls_local_identity` (tls)',
    doc: 'Our own identity on this channel (the certificate ID also picks the certificate we present). IPsec: the connection\'s local IKE id, overriding `local_id` (charon picks certificate and key by it). TLS: a DNS name our certificate (`cert` or `tls_cert`) must hold; checked at load.',
  },
  { key: 'esp', type: 'proposal', default: '`aes256gcm16`', doc: 'ESP proposal in strongSwan syntax, AEAD only: `aes128gcm16`, `aes256gcm16`, `chacha20poly1305`, optionally with `-prfsha256`, `-ecp256`, `-modp3072`, `-x25519`… DES, 3DES, CBC and other non-AEAD ciphers are refused.' },
  { key: 'negotiate', type: '`before-answer` | `on-traffic`', default: '`before-answer`', doc: '`peer` only: bring the SA up before the DNS answer is released, or on the first packet (`on-traffic`: the XFRM trap policy drops the packets until the SA is up; the kernel counts them as `XfrmOutNoStates` in `/proc/net/xfrm_stat`, exported as `dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"}`).' },
  { key: 'tls_port', type: 'port', default: '`9853`', doc: '`tls` only: the TCP port of the accepting side (`peer`: at each resolved address; `tunnel`: at the gateway).' },
  { key: 'cert', type: 'path', default: '`tls_cert`', doc: '`tls` only: our certificate (PEM, leaf first), presented to the accepting side. Read and checked at load: it must be valid now, match `key`, and hold `local_identity`.' },
  { key: 'key', type: 'path', default: '`tls_key`', doc: '`tls` only: the unencrypted PEM private key of `cert`.' },
  { key: 'ca', type: 'path', default: '`tls_ca`', doc: '`tls` only: the CA certificate(s) the accepting side\'s certificate must chain to (PEM).' },
  { key: 'negotiate_timeout', type: 'milliseconds (100–60000)', default: '`2000`', doc: '`peer` with `negotiate: before-answer` only: how long the DNS answer waits for the SA; when it is not up by then the client gets SERVFAIL. Raise it for slow peers or machines (stub resolvers commonly give up after about 5 s and retry). An error on a `tunnel` channel or together with `negotiate: on-traffic`.' },
];

export function readChannels(channels: unknown, doc: YamlDoc, d: Draft): void {
  if (!isObj(channels)) doc.fail(['channels'], 'must be a mapping name → {kind, gateway, identity, esp}');
  for (const [name, v] of doc.entries(channels, ['channels'])) {
    const path = ['channels', name];
    doc.section(() => {
      if (!isObj(v)) doc.fail(path, `channel "${name}" must be a mapping with at least "kind"`);
      doc.checkKeys(v, path, CHANNEL_FIELDS.map((f) => f.key));
      d.channels.set(name, { input: { ...v }, where: (field) => doc.at(field ? [...path, field] : path) });
    });
  }
}

const SHAPE =
  'NAME=tunnel:GATEWAY[,identity=ID][,esp=PROPOSAL][,local_identity=ID], NAME=peer[,identity=ID|%name][,esp=PROPOSAL][,negotiate=…][,negotiate_timeout=MS][,local_identity=ID], ' +
  'NAME=tls-tunnel:HUB[,identity=NAME][,tls_port=PORT][,local_identity=NAME][,cert=PATH][,key=PATH][,ca=PATH] or NAME=tls-peer[,identity=NAME|%name][,tls_port=PORT][,…]';

/** Every option a --channel may carry (each channel kind then refuses what is not its own). */
const OPTIONS = ['identity', 'local_identity', 'esp', 'negotiate', 'negotiate_timeout', 'tls_port', 'cert', 'key', 'ca'];

export function parseChannelFlag(v: string): { name: string; input: ChannelInput } {
  const [name, spec] = flagPair('channel', v, SHAPE);
  const { head, opts } = flagOptions('channel', spec, OPTIONS);
  const input: ChannelInput = {};
  const tls = head.startsWith('tls-');
  const kind = tls ? head.slice(4) : head;
  if (tls) input.protocol = 'tls';
  if (kind === 'peer') input.kind = 'peer';
  else if (kind.startsWith('tunnel:') && kind.length > 7) Object.assign(input, { kind: 'tunnel', gateway: kind.slice(7) });
  else throw new ConfigError('--channel', `"${v}": expected ${SHAPE}`);
  for (const [k, val] of opts) (input as Record<string, unknown>)[k] = val;
  // Numbers, as YAML gives them; anything else stays text and buildChannel says what is wrong.
  for (const k of ['negotiate_timeout', 'tls_port'] as const) {
    const n = opts.get(k);
    if (n !== undefined && /^[0-9]{1,9}$/.test(n)) input[k] = Number(n);
  }
  return { name, input };
}

export function applyChannelFlags(texts: readonly string[], d: Draft): void {
  const given = new Set<string>();
  for (const c of texts) {
    const { name, input } = parseChannelFlag(c);
    // a flag replaces the file's channel of that name; two flags for one name are a mistake
    if (given.has(name)) throw new ConfigError('--channel', `channel "${name}" is given twice; give each channel once`);
    given.add(name);
    d.channels.set(name, { input, where: () => '--channel' });
  }
}
