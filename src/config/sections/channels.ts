/**
 * `channels:` (name → {kind, gateway, identity, esp, negotiate, negotiate_timeout}) and
 * `--channel NAME=SPEC`. The values are checked once file and flags are merged
 * (policy/channel.ts buildChannel, in finalize.ts), so both forms get the same checks.
 */
import { ConfigError } from '../../util/errors.ts';
import type { ChannelInput } from '../../policy/channel.ts';
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagOptions, flagPair } from './flag-text.ts';

export const CHANNEL_FIELDS: FieldDoc[] = [
  { key: 'kind', type: '`tunnel` | `peer`', doc: '`tunnel`: through a hub gateway (IPsec tunnel mode to `gateway`). `peer`: IKE straight to each resolved address.' },
  { key: 'gateway', type: 'IP or host name', doc: '`tunnel` only, required: the hub the traffic is tunnelled through.' },
  { key: 'identity', type: 'string', default: '`%name` (peer) / the gateway (tunnel)', doc: 'Identity the peer must prove with its certificate (the patent\'s "certificate ID"). `%name` = the name that was queried.' },
  { key: 'esp', type: 'proposal', default: '`aes256gcm16`', doc: 'ESP proposal in strongSwan syntax, AEAD only: `aes128gcm16`, `aes256gcm16`, `chacha20poly1305`, optionally with `-prfsha256`, `-ecp256`, `-modp3072`, `-x25519`… DES, 3DES, CBC and other non-AEAD ciphers are refused.' },
  { key: 'negotiate', type: '`before-answer` | `on-traffic`', default: '`before-answer`', doc: '`peer` only: bring the SA up before the DNS answer is released, or on the first packet (`on-traffic`: the XFRM trap policy drops the packets until the SA is up; the kernel counts them as `XfrmOutNoStates` in `/proc/net/xfrm_stat`, exported as `dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"}`).' },
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

const SHAPE = 'NAME=tunnel:GATEWAY[,identity=ID][,esp=PROPOSAL] or NAME=peer[,identity=ID|%name][,esp=PROPOSAL][,negotiate=…][,negotiate_timeout=MS]';

export function parseChannelFlag(v: string): { name: string; input: ChannelInput } {
  const [name, spec] = flagPair('channel', v, SHAPE);
  const { head, opts } = flagOptions('channel', spec, ['identity', 'esp', 'negotiate', 'negotiate_timeout']);
  const input: ChannelInput = {};
  if (head === 'peer') input.kind = 'peer';
  else if (head.startsWith('tunnel:') && head.length > 7) Object.assign(input, { kind: 'tunnel', gateway: head.slice(7) });
  else throw new ConfigError('--channel', `"${v}": expected ${SHAPE}`);
  for (const [k, val] of opts) (input as Record<string, unknown>)[k] = val;
  // A number, as YAML gives it; anything else stays text and buildChannel says what is wrong.
  const timeout = opts.get('negotiate_timeout');
  if (timeout !== undefined && /^[0-9]{1,9}$/.test(timeout)) input.negotiate_timeout = Number(timeout);
  return { name, input };
}

export function applyChannelFlags(texts: readonly string[], d: Draft): void {
  for (const c of texts) {
    const { name, input } = parseChannelFlag(c);
    d.channels.set(name, { input, where: () => '--channel' });
  }
}
