/**
 * The policy annotation: an EDNS0 option a policy server (#5) adds to its answers to say
 * how the asking client must protect the answer's addresses.
 *
 * Code point: **65350** (0xFF46), from the RFC 6891 §9 "Local/Experimental Use" range
 * 65001–65534. Resolvers that do not know it ignore it, so unaware clients see a normal answer.
 *
 * Option data, version 1 (all integers big-endian; `str8` = u8 length 1..255 then that many
 * printable ASCII octets 0x21–0x7e):
 *
 *   off  size  field
 *   0    1     version        = 1 (a decoder refuses any other)
 *   1    1     node kind      1 host    — the table was chosen by the query's source address
 *                             2 gateway — chosen by an EDNS Client Subnet a trusted key vouched for
 *   2    1     channel kind   0 none (no protection) · 1 tunnel · 2 peer
 *   3    1     flags          reserved, must be 0
 *   4    4     table group    u32, the table's kernel group number
 *   8    str8  table id       e.g. "502" or "default"
 *   --- only when channel kind ≠ 0:
 *        str8  channel name   the server's name for it (a label; the proxy maps it to a local id)
 *        str8  identity       the identity the peer must prove ("%name" = the queried name)
 *        str8  esp proposal   AEAD only, e.g. "aes256gcm16"
 *   --- only when channel kind = 1 (tunnel):
 *        str8  hub gateway    IP literal or host name of the tunnel's hub
 *   Nothing may follow. Decoding is strict: every read is bounds-checked, unknown kinds,
 *   non-zero flags, empty or non-printable strings and trailing octets are errors.
 *
 * The option is trusted only inside an answer whose TSIG verified (see tsig.ts); a server
 * strips any option with this code from the upstream answers it relays before adding its own.
 */
import type { ChannelKind, Decision } from '../policy/types.ts';
import { DnssealError } from '../util/errors.ts';
import { copyBytes, walkMessage, type MessageSpans } from './tsig.ts';
import { TYPE_OPT } from './wire.ts';

export const POLICY_OPTION_CODE = 65350;
export const POLICY_OPTION_VERSION = 1;

export type NodeKind = 'host' | 'gateway';

export interface PolicyChannel {
  name: string;
  kind: ChannelKind;
  identity: string;
  esp: string;
  /** `tunnel` only. */
  gateway?: string;
}

export interface PolicyAnnotation {
  version: 1;
  node: NodeKind;
  /** Table id as configured on the server (`502`, `default`). */
  table: string;
  group: number;
  /** null: the server's table says "no protection" for this client and name. */
  channel: PolicyChannel | null;
}

const NODE_CODES: Record<NodeKind, number> = { host: 1, gateway: 2 };
const CHANNEL_CODES: Record<ChannelKind, number> = { tunnel: 1, peer: 2 };

function bad(message: string): never {
  throw new DnssealError('policy-option', 'policy_option_invalid', message);
}

function str8(out: number[], value: string, field: string): void {
  if (value.length < 1 || value.length > 255) bad(`${field} must be 1..255 characters, got ${value.length}`);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) bad(`${field} ${JSON.stringify(value)} has a non-printable or non-ASCII character`);
  }
  out.push(value.length);
  for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i));
}

/** Encodes the option data (without the option code/length header). */
export function encodePolicyOption(a: PolicyAnnotation): Uint8Array {
  const out: number[] = [POLICY_OPTION_VERSION, NODE_CODES[a.node], a.channel ? CHANNEL_CODES[a.channel.kind] : 0, 0];
  if (!Number.isInteger(a.group) || a.group < 0 || a.group > 0xffffffff) bad(`table group ${a.group} is not a u32`);
  out.push((a.group >>> 24) & 0xff, (a.group >>> 16) & 0xff, (a.group >>> 8) & 0xff, a.group & 0xff);
  str8(out, a.table, 'table id');
  if (a.channel) {
    str8(out, a.channel.name, 'channel name');
    str8(out, a.channel.identity, 'identity');
    str8(out, a.channel.esp, 'esp proposal');
    if (a.channel.kind === 'tunnel') str8(out, a.channel.gateway ?? '', 'hub gateway');
    else if (a.channel.gateway !== undefined) bad('a peer channel has no hub gateway');
  }
  return Uint8Array.from(out);
}

/** Strict decode of the option data; throws DnssealError('policy_option_invalid'). */
export function decodePolicyOptionData(data: Uint8Array): PolicyAnnotation {
  let off = 0;
  const need = (n: number, what: string) => {
    if (off + n > data.length) bad(`truncated reading ${what} at offset ${off} (length ${data.length})`);
  };
  const readStr = (field: string): string => {
    need(1, `${field} length`);
    const len = data[off]!;
    if (len === 0) bad(`${field} is empty`);
    need(1 + len, field);
    let s = '';
    for (let i = 0; i < len; i++) {
      const c = data[off + 1 + i]!;
      if (c < 0x21 || c > 0x7e) bad(`${field} has a non-printable octet 0x${c.toString(16)}`);
      s += String.fromCharCode(c);
    }
    off += 1 + len;
    return s;
  };
  need(8, 'fixed header');
  const version = data[0]!;
  if (version !== POLICY_OPTION_VERSION) bad(`unsupported version ${version} (this build speaks ${POLICY_OPTION_VERSION})`);
  const nodeCode = data[1]!;
  const node = (Object.keys(NODE_CODES) as NodeKind[]).find((k) => NODE_CODES[k] === nodeCode);
  if (!node) bad(`unknown node kind ${nodeCode}`);
  const chCode = data[2]!;
  if (chCode > 2) bad(`unknown channel kind ${chCode}`);
  if (data[3] !== 0) bad(`reserved flags 0x${data[3]!.toString(16)} set`);
  const group = ((data[4]! << 24) >>> 0) + ((data[5]! << 16) | (data[6]! << 8) | data[7]!);
  off = 8;
  const table = readStr('table id');
  let channel: PolicyChannel | null = null;
  if (chCode !== 0) {
    const kind: ChannelKind = chCode === 1 ? 'tunnel' : 'peer';
    const name = readStr('channel name');
    const identity = readStr('identity');
    const esp = readStr('esp proposal');
    channel = { name, kind, identity, esp };
    if (kind === 'tunnel') channel.gateway = readStr('hub gateway');
  }
  if (off !== data.length) bad(`${data.length - off} octets after the end of the option`);
  return { version: 1, node, table, group, channel };
}

/** Builds the annotation for a decision the server's policy made. */
export function annotationFromDecision(d: Decision, node: NodeKind): PolicyAnnotation {
  const ch = d.channel;
  return {
    version: 1,
    node,
    table: d.table,
    group: d.group,
    channel: ch
      ? { name: ch.name, kind: ch.kind, identity: ch.identity, esp: ch.esp, ...(ch.kind === 'tunnel' ? { gateway: ch.gateway ?? '' } : {}) }
      : null,
  };
}

// ---------------------------------------------------------------------------------------
// Finding and placing the option inside a raw DNS message.

interface OptOption {
  code: number;
  data: Uint8Array;
}

function wireError(message: string): never {
  throw new DnssealError('policy-option', 'policy_option_invalid', message);
}

/** The single OPT RR of the additional section, if any (two OPTs are an error, RFC 6891 §6.1.1). */
function findOpt(spans: MessageSpans) {
  const opts = spans.records.filter((r) => r.type === TYPE_OPT);
  if (opts.length > 1) wireError(`${opts.length} OPT records`);
  const opt = opts[0];
  if (opt && opt.section !== 'additional') wireError('OPT record outside the additional section');
  return opt;
}

function parseOptions(buf: Uint8Array, start: number, len: number): OptOption[] {
  const out: OptOption[] = [];
  let off = start;
  const end = start + len;
  while (off < end) {
    if (off + 4 > end) wireError('truncated EDNS option header');
    const code = (buf[off]! << 8) | buf[off + 1]!;
    const olen = (buf[off + 2]! << 8) | buf[off + 3]!;
    if (off + 4 + olen > end) wireError(`EDNS option ${code} runs past the OPT RDATA`);
    out.push({ code, data: buf.subarray(off + 4, off + 4 + olen) });
    off += 4 + olen;
  }
  return out;
}

/** Every EDNS option of the message's OPT RR (empty when there is no OPT). */
export function ednsOptions(msg: Uint8Array): OptOption[] {
  const spans = walkMessage(msg);
  const opt = findOpt(spans);
  return opt ? parseOptions(msg, opt.rdStart, opt.rdLength) : [];
}

/**
 * The policy annotation in a message: null when it has none; throws when it has a malformed
 * one or more than one. Call only on a message whose TSIG verified.
 */
export function decodePolicyOption(msg: Uint8Array): PolicyAnnotation | null {
  const found = ednsOptions(msg).filter((o) => o.code === POLICY_OPTION_CODE);
  if (found.length > 1) wireError(`${found.length} policy options in one message`);
  return found[0] ? decodePolicyOptionData(found[0].data) : null;
}

/**
 * Returns a copy of an (unsigned) message whose OPT carries no option `code`, then one with
 * `data` when given. A message without OPT is returned unchanged (`placed` false). The OPT
 * must be the last record (resizing it would shift later records, whose compression pointers
 * could point past it); servers put OPT last, before any TSIG. Sign afterwards.
 */
export function setEdnsOption(msg: Uint8Array, code: number, data: Uint8Array | null): { wire: Uint8Array; placed: boolean } {
  const spans = walkMessage(msg);
  const opt = findOpt(spans);
  if (!opt) return { wire: copyBytes(msg), placed: false };
  if (opt !== spans.records[spans.records.length - 1]) wireError('OPT is not the last record; cannot place an EDNS option');
  const kept = parseOptions(msg, opt.rdStart, opt.rdLength).filter((o) => o.code !== code);
  if (data) kept.push({ code, data });
  let rdLen = 0;
  for (const o of kept) rdLen += 4 + o.data.length;
  if (rdLen > 0xffff) wireError('OPT RDATA would exceed 65535 octets');
  const rdata = new Uint8Array(rdLen);
  let off = 0;
  for (const o of kept) {
    rdata.set([o.code >> 8, o.code & 0xff, o.data.length >> 8, o.data.length & 0xff], off);
    rdata.set(o.data, off + 4);
    off += 4 + o.data.length;
  }
  const before = msg.subarray(0, opt.rdStart);
  const after = msg.subarray(opt.end);
  const wire = new Uint8Array(before.length + rdata.length + after.length);
  wire.set(before);
  wire.set(rdata, before.length);
  wire.set(after, before.length + rdata.length);
  wire[opt.rdStart - 2] = rdLen >> 8;
  wire[opt.rdStart - 1] = rdLen & 0xff;
  return { wire, placed: data !== null };
}

/**
 * Returns a copy of an (unsigned) message with every policy option removed and, when
 * `annotation` is given, one added to its OPT RR. A message without OPT gets none (RFC 6891
 * §7: no OPT in the answer when the query had none), so `added` is false.
 */
export function setPolicyOption(msg: Uint8Array, annotation: PolicyAnnotation | null): { wire: Uint8Array; added: boolean } {
  const { wire, placed } = setEdnsOption(msg, POLICY_OPTION_CODE, annotation ? encodePolicyOption(annotation) : null);
  return { wire, added: placed };
}
