/**
 * The preamble inside the TLS session (README.md, "Wire protocol"): an HTTP/1.1 CONNECT
 * request naming the original destination, and the accepting side's status reply. After a
 * `200` both directions carry the flow's raw bytes.
 *
 *   CONNECT 192.0.2.10:443 HTTP/1.1\r\n
 *   Host: 192.0.2.10:443\r\n
 *   Dnsseal-Name: www.corp.example\r\n        (optional: the name the address came from)
 *   \r\n
 *
 *   HTTP/1.1 200 OK\r\n\r\n
 *   HTTP/1.1 403 Forbidden\r\nDnsseal-Reason: forbidden\r\nContent-Length: 30\r\n\r\n<text>
 *
 * Both parsers are bounded (MAX_HEAD_BYTES, MAX_HEADER_LINES), check every byte before they
 * use it, answer `more` until the blank line arrives and refuse garbage as early as they can
 * see it (a wrong first byte does not wait for a timeout).
 */
import { formatIP, parseIP } from '../policy/cidr.ts';
import { canonicalLabels } from '../policy/name.ts';
import type { Destination } from './types.ts';

export const MAX_HEAD_BYTES = 4096;
export const MAX_HEADER_LINES = 32;

/** The refusal reasons a reply carries (`Dnsseal-Reason`), each with its status. */
export const REFUSALS = {
  bad_request: [400, 'Bad Request'],
  forbidden: [403, 'Forbidden'],
  method_not_allowed: [405, 'Method Not Allowed'],
  request_timeout: [408, 'Request Timeout'],
  too_many: [429, 'Too Many Requests'],
  header_too_large: [431, 'Request Header Fields Too Large'],
  upstream_failed: [502, 'Bad Gateway'],
  overloaded: [503, 'Service Unavailable'],
  upstream_timeout: [504, 'Gateway Timeout'],
  version: [505, 'HTTP Version Not Supported'],
} as const;
export type Refusal = keyof typeof REFUSALS;

export interface ConnectRequest {
  dst: Destination;
  /** Canonical (lower-case A-label, no root dot) name, when the relay sent one. */
  name?: string;
}

export interface ConnectReply {
  status: number;
  /** `Dnsseal-Reason` of a refusal when it is one we know; `other` otherwise; absent for 200. */
  reason?: Refusal | 'other';
}

export type Parsed<T> =
  | { kind: 'more' }
  | { kind: 'error'; refusal: Refusal; detail: string }
  | { kind: 'done'; value: T; consumed: number };

const enc = new TextEncoder();

/** Authority text of a destination: `1.2.3.4:80`, `[2001:db8::1]:443`. */
export function authority(dst: Destination): string {
  return dst.addr.includes(':') ? `[${dst.addr}]:${dst.port}` : `${dst.addr}:${dst.port}`;
}

export function encodeConnectRequest(req: ConnectRequest): Uint8Array {
  const a = authority(req.dst);
  const name = req.name !== undefined ? `Dnsseal-Name: ${req.name}\r\n` : '';
  return enc.encode(`CONNECT ${a} HTTP/1.1\r\nHost: ${a}\r\n${name}\r\n`);
}

/** The 200 reply, or a refusal with its reason and a one-line text for people (curl -v). */
export function encodeReply(refusal?: Refusal, detail = ''): Uint8Array {
  if (!refusal) return enc.encode('HTTP/1.1 200 OK\r\n\r\n');
  const [status, text] = REFUSALS[refusal];
  const body = detail.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  return enc.encode(`HTTP/1.1 ${status} ${text}\r\nDnsseal-Reason: ${refusal}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}

/** Where the head ends (index after CRLFCRLF), or -1; only the first MAX_HEAD_BYTES count. */
function headEnd(buf: Uint8Array): number {
  const n = Math.min(buf.length, MAX_HEAD_BYTES);
  for (let i = 3; i < n; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** A byte that no head may hold: controls other than CR/LF/HTAB, DEL and non-ASCII. */
function badByteAt(buf: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) {
    const b = buf[i]!;
    if ((b < 0x20 && b !== 13 && b !== 10 && b !== 9) || b >= 0x7f) return i;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

interface Head {
  first: string;
  headers: Array<[string, string]>;
  consumed: number;
}

/** Splits a complete head into its first line and headers; shared by request and reply. */
function splitHead(buf: Uint8Array, prefix: string): Parsed<Head> {
  const end = headEnd(buf);
  const scan = end < 0 ? Math.min(buf.length, MAX_HEAD_BYTES) : end;
  const bad = badByteAt(buf, scan);
  if (bad >= 0) return { kind: 'error', refusal: 'bad_request', detail: `byte 0x${buf[bad]!.toString(16)} at offset ${bad} is not allowed in a head` };
  // Garbage (a TLS record, another protocol) is refused at the first byte that cannot fit.
  const seen = Math.min(scan, prefix.length);
  for (let i = 0; i < seen; i++) {
    if (buf[i] !== prefix.charCodeAt(i)) {
      return prefix === 'CONNECT '
        ? buf[0]! >= 0x41 && buf[0]! <= 0x5a // an upper-case word: another HTTP method
          ? { kind: 'error', refusal: 'method_not_allowed', detail: 'only CONNECT is served here' }
          : { kind: 'error', refusal: 'bad_request', detail: 'not a CONNECT request' }
        : { kind: 'error', refusal: 'bad_request', detail: 'not an HTTP/1.1 reply' };
    }
  }
  if (end < 0) {
    if (buf.length >= MAX_HEAD_BYTES) return { kind: 'error', refusal: 'header_too_large', detail: `no end of head within ${MAX_HEAD_BYTES} bytes` };
    return { kind: 'more' };
  }
  const text = new TextDecoder('latin1').decode(buf.subarray(0, end - 4));
  const lines = text.split('\r\n');
  if (lines.length - 1 > MAX_HEADER_LINES) return { kind: 'error', refusal: 'header_too_large', detail: `more than ${MAX_HEADER_LINES} header lines` };
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    if (line.includes('\r') || line.includes('\n')) return { kind: 'error', refusal: 'bad_request', detail: 'a line ends in a bare CR or LF' };
  }
  for (const line of lines.slice(1)) {
    if (line.startsWith(' ') || line.startsWith('\t')) return { kind: 'error', refusal: 'bad_request', detail: 'folded header lines are not allowed' };
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) return { kind: 'error', refusal: 'bad_request', detail: 'a header line is not "Name: value"' };
    headers.push([name.toLowerCase(), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
  }
  return { kind: 'done', value: { first: lines[0]!, headers, consumed: end }, consumed: end };
}

/** Parses `ADDR:PORT` / `[ADDR]:PORT` with an IP literal; null when it is anything else. */
export function parseAuthority(text: string): Destination | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):([1-9][0-9]{0,4})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const bytes = parseIP(m[1] ?? m[2]!);
  if (!bytes || (m[1] !== undefined && !m[1].includes(':'))) return null;
  return { addr: formatIP(bytes), port };
}

function single(headers: Array<[string, string]>, name: string): string | undefined | null {
  const found = headers.filter(([n]) => n === name);
  if (found.length > 1) return null;
  return found[0]?.[1];
}

export function parseConnectRequest(buf: Uint8Array): Parsed<ConnectRequest> {
  const head = splitHead(buf, 'CONNECT ');
  if (head.kind !== 'done') return head;
  const { first, headers, consumed } = head.value;
  const m = /^CONNECT ([^ ]+) HTTP\/([0-9])\.([0-9])$/.exec(first);
  if (!m) return { kind: 'error', refusal: 'bad_request', detail: 'the request line is not "CONNECT ADDR:PORT HTTP/1.1"' };
  if (m[2] !== '1' || m[3] !== '1') return { kind: 'error', refusal: 'version', detail: `HTTP/${m[2]}.${m[3]} is not spoken here; use HTTP/1.1` };
  const dst = parseAuthority(m[1]!);
  if (!dst) return { kind: 'error', refusal: 'bad_request', detail: 'the target must be an IP literal and a port (ADDR:PORT or [ADDR]:PORT)' };
  const host = single(headers, 'host');
  if (host === null) return { kind: 'error', refusal: 'bad_request', detail: 'more than one Host header' };
  if (host === undefined) return { kind: 'error', refusal: 'bad_request', detail: 'no Host header' };
  const hostDst = parseAuthority(host);
  if (!hostDst || hostDst.addr !== dst.addr || hostDst.port !== dst.port) {
    return { kind: 'error', refusal: 'bad_request', detail: 'the Host header differs from the CONNECT target' };
  }
  if (headers.some(([n]) => n === 'content-length' || n === 'transfer-encoding')) {
    return { kind: 'error', refusal: 'bad_request', detail: 'a CONNECT request has no body (Content-Length/Transfer-Encoding)' };
  }
  const rawName = single(headers, 'dnsseal-name');
  if (rawName === null) return { kind: 'error', refusal: 'bad_request', detail: 'more than one Dnsseal-Name header' };
  const value: ConnectRequest = { dst };
  if (rawName !== undefined) {
    let labels: string[];
    try {
      labels = canonicalLabels(rawName.replace(/\.$/, ''));
    } catch (err) {
      return { kind: 'error', refusal: 'bad_request', detail: `Dnsseal-Name: ${(err as Error).message}` };
    }
    value.name = labels.join('.');
  }
  return { kind: 'done', value, consumed };
}

export function parseReply(buf: Uint8Array): Parsed<ConnectReply> {
  const head = splitHead(buf, 'HTTP/1.1 ');
  if (head.kind !== 'done') return head;
  const { first, headers, consumed } = head.value;
  const m = /^HTTP\/1\.1 ([1-5][0-9]{2})(?: [\x20-\x7e]*)?$/.exec(first);
  if (!m) return { kind: 'error', refusal: 'bad_request', detail: 'the status line is not "HTTP/1.1 NNN text"' };
  const status = Number(m[1]);
  if (status === 200) return { kind: 'done', value: { status }, consumed };
  const why = single(headers, 'dnsseal-reason');
  const reason = why && Object.hasOwn(REFUSALS, why) ? (why as Refusal) : 'other';
  return { kind: 'done', value: { status, reason }, consumed };
}
