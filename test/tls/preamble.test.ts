import { describe, expect, test } from 'bun:test';
import { MAX_HEAD_BYTES, MAX_HEADER_LINES, encodeConnectRequest, encodeReply, parseConnectRequest, parseReply } from '../../src/tls/preamble.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('tls/preamble', () => {
  test('the request is the golden bytes when a name is given', () => {
    expect(dec(encodeConnectRequest({ dst: { addr: '192.0.2.10', port: 443 }, name: 'www.corp.example' }))).toBe(
      'CONNECT 192.0.2.10:443 HTTP/1.1\r\nHost: 192.0.2.10:443\r\nDnsseal-Name: www.corp.example\r\n\r\n',
    );
    expect(dec(encodeConnectRequest({ dst: { addr: '2001:db8::1', port: 80 } }))).toBe('CONNECT [2001:db8::1]:80 HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n');
  });

  test('replies are the golden bytes', () => {
    expect(dec(encodeReply())).toBe('HTTP/1.1 200 OK\r\n\r\n');
    expect(dec(encodeReply('forbidden', 'no\r\nway'))).toBe('HTTP/1.1 403 Forbidden\r\nDnsseal-Reason: forbidden\r\nContent-Length: 7\r\nConnection: close\r\n\r\nno??way');
  });

  test('a request round-trips and the bytes after the head are left over', () => {
    const head = encodeConnectRequest({ dst: { addr: '2001:db8::1', port: 8443 }, name: 'a.example' });
    const buf = new Uint8Array([...head, ...enc('GET / HTTP/1.1\r\n')]);
    const r = parseConnectRequest(buf);
    expect(r).toEqual({ kind: 'done', value: { dst: { addr: '2001:db8::1', port: 8443 }, name: 'a.example' }, consumed: head.length });
  });

  test('the parser asks for more at every prefix when a head arrives byte by byte', () => {
    const head = encodeConnectRequest({ dst: { addr: '198.51.100.7', port: 22 }, name: 'ssh.example' });
    for (let i = 0; i < head.length; i++) expect(parseConnectRequest(head.subarray(0, i)).kind).toBe('more');
    expect(parseConnectRequest(head).kind).toBe('done');
  });

  test.each([
    ['a TLS ClientHello', '\x16\x03\x01\x02\x00', 'bad_request'],
    ['another method', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'method_not_allowed'],
    ['lower-case connect', 'connect 1.2.3.4:80 HTTP/1.1\r\n', 'bad_request'],
    ['HTTP/1.0', 'CONNECT 1.2.3.4:80 HTTP/1.0\r\nHost: 1.2.3.4:80\r\n\r\n', 'version'],
    ['a host name as target', 'CONNECT www.example:80 HTTP/1.1\r\nHost: www.example:80\r\n\r\n', 'bad_request'],
    ['a zone id', 'CONNECT [fe80::1%eth0]:80 HTTP/1.1\r\nHost: [fe80::1%eth0]:80\r\n\r\n', 'bad_request'],
    ['port 0', 'CONNECT 1.2.3.4:0 HTTP/1.1\r\nHost: 1.2.3.4:0\r\n\r\n', 'bad_request'],
    ['port 65536', 'CONNECT 1.2.3.4:65536 HTTP/1.1\r\nHost: 1.2.3.4:65536\r\n\r\n', 'bad_request'],
    ['a leading zero port', 'CONNECT 1.2.3.4:080 HTTP/1.1\r\nHost: 1.2.3.4:080\r\n\r\n', 'bad_request'],
    ['IPv6 without brackets', 'CONNECT 2001:db8::1:80 HTTP/1.1\r\nHost: x\r\n\r\n', 'bad_request'],
    ['no Host', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\n\r\n', 'bad_request'],
    ['two Hosts', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\r\nHost: 1.2.3.4:80\r\n\r\n', 'bad_request'],
    ['a Host that differs', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.5:80\r\n\r\n', 'bad_request'],
    ['a body', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\r\nContent-Length: 5\r\n\r\n', 'bad_request'],
    ['a bare LF', 'CONNECT 1.2.3.4:80 HTTP/1.1\nHost: 1.2.3.4:80\r\n\r\n', 'bad_request'],
    ['a folded header', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\r\n x\r\n\r\n', 'bad_request'],
    ['a space before the colon', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost : 1.2.3.4:80\r\n\r\n', 'bad_request'],
    ['a NUL byte', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\x00\r\n\r\n', 'bad_request'],
    ['a bad name', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\r\nDnsseal-Name: a..b\r\n\r\n', 'bad_request'],
    ['two names', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\r\nDnsseal-Name: a.b\r\nDnsseal-Name: c.d\r\n\r\n', 'bad_request'],
  ])('%s is refused', (_what, text, refusal) => {
    const r = parseConnectRequest(enc(text));
    expect(r.kind).toBe('error');
    if (r.kind === 'error') expect(r.refusal).toBe(refusal as never);
  });

  test('an IPv4-mapped target and an upper-case name are made canonical', () => {
    const r = parseConnectRequest(enc('CONNECT [::ffff:192.0.2.1]:80 HTTP/1.1\r\nhost: [::FFFF:192.0.2.1]:80\r\nDNSSEAL-NAME: WWW.Example.\r\n\r\n'));
    expect(r).toMatchObject({ kind: 'done', value: { dst: { addr: '192.0.2.1', port: 80 }, name: 'www.example' } });
  });

  test('a head longer than the limit is refused when no blank line comes', () => {
    const long = enc('CONNECT 1.2.3.4:80 HTTP/1.1\r\nX: ' + 'a'.repeat(MAX_HEAD_BYTES));
    const r = parseConnectRequest(long);
    expect(r).toMatchObject({ kind: 'error', refusal: 'header_too_large' });
    expect(parseConnectRequest(long.subarray(0, MAX_HEAD_BYTES - 1)).kind).toBe('more');
  });

  test('too many header lines are refused', () => {
    const lines = Array.from({ length: MAX_HEADER_LINES + 1 }, (_, i) => `X-${i}: y\r\n`).join('');
    expect(parseConnectRequest(enc(`CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: 1.2.3.4:80\r\n${lines}\r\n`))).toMatchObject({ kind: 'error', refusal: 'header_too_large' });
  });

  test('random garbage never throws and never parses', () => {
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(1 + Math.floor(Math.random() * 300));
      crypto.getRandomValues(b);
      expect(['more', 'error']).toContain(parseConnectRequest(b).kind);
    }
  });

  test('replies parse with their reason, and an unknown reason reads as other', () => {
    expect(parseReply(encodeReply())).toEqual({ kind: 'done', value: { status: 200 }, consumed: 19 });
    expect(parseReply(encodeReply('too_many'))).toMatchObject({ kind: 'done', value: { status: 429, reason: 'too_many' } });
    expect(parseReply(enc('HTTP/1.1 500 Oops\r\nDnsseal-Reason: toString\r\n\r\n'))).toMatchObject({ kind: 'done', value: { status: 500, reason: 'other' } });
    expect(parseReply(enc('HTTP/1.0 200 OK\r\n\r\n')).kind).toBe('error');
    expect(parseReply(enc('HTTP/1.1 200 OK\r\n')).kind).toBe('more');
  });
});
