import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { encodeConnectRequest } from '../../src/tls/preamble.ts';
import { waitFor } from './endpoint-pairs.ts';
import { standardPki } from './pki.ts';
import { curl, rawClient, rig } from './rig.ts';
import { tlsClient } from './tls-client.ts';

const pki = standardPki();
let r: Awaited<ReturnType<typeof rig>>;
beforeAll(async () => {
  r = await rig({ pki, limits: { handshakeTimeoutMs: 500, requestTimeoutMs: 500, maxPerClient: 3 } });
});
afterAll(() => {
  r.close();
  pki.cleanup();
});

async function stillServes(): Promise<void> {
  const res = await curl(r.relayPort, '/small');
  expect(new TextDecoder().decode(res.body)).toBe('hello from the server\n');
}

describe('tls acceptor', () => {
  test('garbage instead of TLS is closed and the acceptor keeps serving', async () => {
    const { ep, col } = await rawClient(r.acceptor.port);
    ep.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await waitFor(() => col.ended || col.closed, 'the acceptor to close the garbage connection');
    expect(new TextDecoder().decode(col.all())).not.toContain('HTTP/1.1 200');
    await waitFor(() => r.tm.get().failures.get({ side: 'accept', reason: 'protocol' }) >= 1, 'a protocol failure to be counted');
    await stillServes();
  });

  test('a handshake that stalls is closed after the handshake timeout and others are served meanwhile', async () => {
    const { ep, col } = await rawClient(r.acceptor.port);
    ep.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // the start of a ClientHello, then nothing
    await stillServes();
    expect(col.ended || col.closed).toBe(false);
    await waitFor(() => col.ended || col.closed, 'the stalled handshake to be closed', 5000);
    expect(r.tm.get().failures.get({ side: 'accept', reason: 'timeout' })).toBeGreaterThanOrEqual(1);
  });

  test('a client that sends its CONNECT head slowly gets 408 after the request timeout', async () => {
    const c = await tlsClient(r.acceptor.port, pki.creds('router'));
    expect(await c.handshake).toBe(true);
    c.ep.write(new TextEncoder().encode('CONNECT 127.0.0.1:'));
    await waitFor(() => c.col.ended || c.col.closed, 'the acceptor to give up on the slow head', 5000);
    expect(c.text()).toStartWith('HTTP/1.1 408 Request Timeout\r\nDnsseal-Reason: request_timeout\r\n');
    expect(c.col.error).toBeUndefined();
  });

  test.each([
    ['a forbidden port', () => encodeConnectRequest({ dst: { addr: '127.0.0.1', port: 22 } }), 'HTTP/1.1 403 Forbidden\r\nDnsseal-Reason: forbidden'],
    ['another method', () => new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'), 'HTTP/1.1 405 Method Not Allowed'],
    ['an oversized head', () => new TextEncoder().encode(`CONNECT 127.0.0.1:80 HTTP/1.1\r\nX: ${'a'.repeat(5000)}`), 'HTTP/1.1 431 '],
  ])('%s gets a refusal with its reason and a clean close', async (_what, bytes, start) => {
    const c = await tlsClient(r.acceptor.port, pki.creds('router'));
    expect(await c.handshake).toBe(true);
    c.ep.write(bytes());
    await waitFor(() => c.col.ended || c.col.closed, 'the refusal');
    expect(c.text()).toStartWith(start);
    expect(c.col.ended).toBe(true);
  });

  test('a client certificate that is not in the clients list is refused with 403', async () => {
    const c = await tlsClient(r.acceptor.port, pki.creds('stranger'));
    await c.handshake;
    c.ep.write(encodeConnectRequest({ dst: { addr: '127.0.0.1', port: r.http.port } }));
    await waitFor(() => c.col.ended || c.col.closed, 'the refusal');
    expect(c.text()).toContain('Dnsseal-Reason: forbidden');
    expect(c.text()).toContain('stranger.corp.test');
  });

  test('a client certificate from another CA gets no session', async () => {
    const c = await tlsClient(r.acceptor.port, pki.creds('foreign'));
    await c.handshake;
    c.ep.write(encodeConnectRequest({ dst: { addr: '127.0.0.1', port: r.http.port } }));
    await waitFor(() => c.col.ended || c.col.closed, 'the close');
    expect(c.col.bytes).toBe(0);
    await stillServes();
  });

  test('a client over its connection limit gets 429 while its others go on', async () => {
    const held = [];
    for (let i = 0; i < 3; i++) {
      const c = await tlsClient(r.acceptor.port, pki.creds('router'));
      expect(await c.handshake).toBe(true);
      held.push(c);
    }
    await waitFor(() => r.acceptor.perClient.get('router.corp.test') === 3, 'three counted connections');
    const extra = await tlsClient(r.acceptor.port, pki.creds('router'));
    await waitFor(() => extra.col.ended || extra.col.closed, 'the 429');
    expect(extra.text()).toStartWith('HTTP/1.1 429 ');
    for (const c of held) c.ep.end();
    await waitFor(() => !r.acceptor.perClient.has('router.corp.test'), 'the per-client count to drop');
    await stillServes();
  });
});
