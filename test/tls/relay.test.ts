import { afterAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { BIG, BIG_SHA, curl, rawClient, rig } from './rig.ts';
import { standardPki } from './pki.ts';
import { waitFor } from './endpoint-pairs.ts';

const pki = standardPki();
afterAll(() => pki.cleanup());

const REQUEST = new TextEncoder().encode('GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');

describe('tls relay', () => {
  test.each(['peer', 'tunnel'] as const)('an HTTP request and a 10 MB download come back byte-exact through a %s channel', async (kind) => {
    const r = await rig({ pki, kind, acceptorCert: kind === 'peer' ? 'peer' : 'hub' });
    try {
      const small = await curl(r.relayPort, '/small');
      expect(small.err).toBe('');
      expect(new TextDecoder().decode(small.body)).toBe('hello from the server\n');
      const big = await curl(r.relayPort, '/big');
      expect(big.code).toBe(0);
      expect(big.body.length).toBe(BIG.length);
      expect(createHash('sha256').update(big.body).digest('hex')).toBe(BIG_SHA);
      await waitFor(() => r.tm.get().relay.get({ channel: r.channel.name, outcome: 'ok' }) === 2, 'two ok relay outcomes');
      expect(r.tm.get().accept.get({ outcome: 'ok' })).toBe(2);
      expect(r.tm.bytes.relay.downstream).toBeGreaterThan(BIG.length);
      expect(r.tm.bytes.accept.downstream).toBe(r.tm.bytes.relay.downstream);
      expect(r.tm.bytes.accept.upstream).toBe(r.tm.bytes.relay.upstream);
      expect(r.metrics.expose()).toContain('dnsseal_tls_handshake_seconds_count{side="relay"} 2');
    } finally {
      r.close();
    }
  });

  test('a 10 MB upload arrives byte-exact when the client sends it', async () => {
    const r = await rig({ pki });
    try {
      const file = pki.path('upload.bin');
      await Bun.write(file, BIG);
      const res = await curl(r.relayPort, '/echo', ['--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream']);
      expect(new TextDecoder().decode(res.body)).toBe(`${BIG.length} ${BIG_SHA}`);
    } finally {
      r.close();
    }
  });

  test.each([
    ['a certificate for another name', 'impostor', '%name', 'identity'],
    ['a wildcard certificate', 'wildcard', '%name', 'identity'],
    ['a fixed identity the certificate does not hold', 'peer', 'hub.corp.test', 'identity'],
  ])('the local connection is reset and nothing reaches the server when the peer presents %s', async (_what, cert, identity, reason) => {
    const r = await rig({ pki, acceptorCert: cert, identity });
    try {
      const { ep, col } = await rawClient(r.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the relay to end the local connection');
      expect(col.error?.message).toMatch(/ECONNRESET|reset/);
      expect(col.bytes).toBe(0);
      expect(r.http.seen.requests).toBe(0);
      expect(r.tm.get().failures.get({ side: 'relay', reason })).toBe(1);
      expect(r.tm.get().relay.get({ channel: 'partner', outcome: 'handshake_failed' })).toBe(1);
      const res = await curl(r.relayPort, '/small');
      expect(res.code).not.toBe(0);
      expect(r.http.seen.requests).toBe(0);
    } finally {
      r.close();
    }
  });

  test('the local connection is reset when %name has no name for the address', async () => {
    const r = await rig({ pki, name: null });
    try {
      const { ep, col } = await rawClient(r.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the reset');
      expect(col.error).toBeDefined();
      expect(r.tm.get().relay.get({ channel: 'partner', outcome: 'no_identity' })).toBe(1);
      expect(r.http.seen.requests).toBe(0);
    } finally {
      r.close();
    }
  });

  test('the local connection is reset when the accepting side refuses our certificate', async () => {
    const r = await rig({ pki, relayCert: 'foreign' });
    try {
      const { ep, col } = await rawClient(r.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the reset');
      expect(col.error).toBeDefined();
      expect(col.bytes).toBe(0);
      expect(r.http.seen.requests).toBe(0);
      await waitFor(() => r.tm.get().failures.get({ side: 'accept', reason: 'untrusted' }) === 1, 'the acceptor to count an untrusted client');
    } finally {
      r.close();
    }
  });

  test('the local connection is reset when the destination is outside the allow-list', async () => {
    const r = await rig({ pki, clients: [{ identity: 'router.corp.test', allow: [{ cidrs: ['127.0.0.1/32'], ports: [1] }] }] });
    try {
      const { ep, col } = await rawClient(r.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the reset');
      expect(col.error).toBeDefined();
      expect(r.http.seen.requests).toBe(0);
      expect(r.tm.get().relay.get({ channel: 'partner', outcome: 'refused' })).toBe(1);
      expect(r.tm.get().accept.get({ outcome: 'forbidden' })).toBe(1);
      expect(r.logs.some((l) => l.includes('reason=forbidden'))).toBe(true);
    } finally {
      r.close();
    }
  });

  test('the local connection is reset when the handshake does not finish in time', async () => {
    const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const r = await rig({ pki, tlsPort: silent.port, handshakeTimeoutMs: 300 });
    try {
      const { ep, col } = await rawClient(r.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the reset after the handshake timeout');
      expect(col.error).toBeDefined();
      expect(r.tm.get().relay.get({ channel: 'partner', outcome: 'timeout' })).toBe(1);
      expect(r.tm.get().failures.get({ side: 'relay', reason: 'timeout' })).toBe(1);
    } finally {
      r.close();
      silent.stop(true);
    }
  });

  test('the local connection is reset when nothing listens at the TLS port', async () => {
    const r = await rig({ pki, tlsPort: 1 });
    try {
      const { ep, col } = await rawClient(r.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the reset');
      expect(col.error).toBeDefined();
      expect(r.tm.get().relay.get({ channel: 'partner', outcome: 'connect_failed' })).toBe(1);
    } finally {
      r.close();
    }
  });

  test('the client sees a reset, not a clean end, when the server aborts mid-response', async () => {
    const r = await rig({ pki });
    const abort = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data(s) { s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'); setTimeout(() => s.terminate(), 50); } } });
    r.close();
    const r2 = await rig({ pki, clients: [{ identity: 'router.corp.test', allow: [{ cidrs: ['127.0.0.1/32'] }] }] });
    // point the rig's flow at the aborting server
    (r2.listener as unknown as { opts: { originalDst: unknown } }).opts.originalDst = { lookup: () => ({ addr: '127.0.0.1', port: abort.port }) };
    try {
      const { ep, col } = await rawClient(r2.relayPort);
      ep.write(REQUEST);
      await waitFor(() => col.closed, 'the reset to reach the client');
      expect(new TextDecoder().decode(col.all())).toContain('partial');
      expect(col.ended).toBe(false);
      expect(col.error).toBeDefined();
      expect(r2.tm.get().relay.get({ channel: 'partner', outcome: 'reset' })).toBe(1);
    } finally {
      r2.close();
      abort.stop(true);
    }
  });
});
