import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { decodePolicyOption } from '../../src/dns/policy-option.ts';
import { canonicalName, walkMessage } from '../../src/dns/tsig.ts';
import { parseTsigKeyFlag, StaticKeyring } from '../../src/dns/tsig-key.ts';
import { Forwarder } from '../../src/proxy/forwarder.ts';
import type { QueryHandler } from '../../src/proxy/handler.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { TcpUpstream } from '../../src/proxy/upstream-tcp.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ServerChannels, signQuery, verifyResponse } from '../../src/policy-server/proxy-side.ts';
import { CLIENT_502, CLIENT_503, KOJIMA, KOJIMA_ADDR, ProxySide, SECRET, ask, figure6State, keyring, makeQuery, serve, startServer, type Served, type Transport } from './helpers.ts';
import { knotdPath, startKnotTsig, type KnotTsig } from './knot-tsig.ts';

// Real implementations on loopback: dig and kdig verify the policy server's signed answers;
// knotd verifies our signed queries and we verify its signed answers.
const DIG = Bun.which('dig');
const KDIG = Bun.which('kdig');
const KNOTD = knotdPath();
const missing = [!DIG && 'dig', !KDIG && 'kdig', !KNOTD && 'knotd'].filter(Boolean);
if (missing.length) console.log(`policy-server interop: skipped, not installed: ${missing.join(', ')} (apt-get install bind9-dnsutils knot knot-dnsutils)`);
const run = missing.length === 0 ? describe : describe.skip;

let served: Served;
let tampered: Served;
let knot: KnotTsig;
let forwarding: Served;
let forwarder: Forwarder | null = null;

async function sh(cmd: string[]): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe' });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out: out + err };
}

run('policy-server interop', () => {
  beforeAll(async () => {
    const server = startServer(figure6State(), realClock);
    served = await serve(server.handle);
    // Same server, but the MAC of every signed answer is damaged: dig/kdig must complain.
    const damage: QueryHandler = async (q, c) => {
      const a = await server.handle(Uint8Array.from(q), c);
      if (!a) return null;
      const spans = walkMessage(a);
      const rec = spans.records[spans.records.length - 1]!;
      if (rec.type !== 250) return a;
      const m = a.slice();
      m[rec.rdStart + canonicalName('hmac-sha256').length + 10]! ^= 1;
      return m;
    };
    tampered = await serve(damage);
    knot = await startKnotTsig();
    // A policy server that forwards to knotd instead of answering from a zone.
    const counters = newProxyCounters();
    const udp = await UdpUpstream.open({ name: 'default', address: '127.0.0.1', port: knot.port, timeoutMs: 2000, clock: realClock, log: silentLogger, counters, poolSize: 2 });
    const tcp = new TcpUpstream({ name: 'default', address: '127.0.0.1', port: knot.port, timeoutMs: 2000, counters });
    forwarder = new Forwarder(new Map([['default', { udp, tcp }]]), counters);
    forwarding = await serve(startServer(figure6State({ zone: null, resolver: forwarder }), realClock).handle);
  });
  afterAll(async () => {
    await served?.close();
    await tampered?.close();
    await forwarding?.close();
    forwarder?.close();
    await knot?.stop();
  });

  const digArgs = (port: number, tcp: boolean, secret = SECRET) => [
    DIG!, '-b', CLIENT_502, '-p', String(port), '@127.0.0.1', KOJIMA, 'A', '+norec', '+tries=1', '+time=2',
    ...(tcp ? ['+tcp'] : []), '-y', `hmac-sha256:dnsseal-test:${secret}`,
  ];

  test.each<Transport>(['udp', 'tcp'])('dig verifies the signed, annotated answer over %s', async (t) => {
    const { code, out } = await sh(digArgs(t === 'udp' ? served.udp.port : served.tcp.port, t === 'tcp'));
    expect(out).not.toMatch(/Couldn't verify|tsig verify failure|expected a TSIG|BADSIG|BADKEY|BADTIME/i);
    expect(out).toContain('status: NOERROR');
    expect(out).toMatch(new RegExp(`${KOJIMA.replace(/\./g, '\\.')}\\.\\s+300\\s+IN\\s+A\\s+${KOJIMA_ADDR}`));
    expect(out).toMatch(/dnsseal-test\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 32 \S+ \d+ NOERROR 0/);
    expect(out).toContain('; OPT=65350: 01 01 01 00 00 00 01 f6'); // version 1, host, tunnel, table 502
    expect(code).toBe(0);
  });

  test.each<Transport>(['udp', 'tcp'])('dig reports a TSIG failure when the answer MAC is damaged over %s', async (t) => {
    const { out } = await sh(digArgs(t === 'udp' ? tampered.udp.port : tampered.tcp.port, t === 'tcp'));
    expect(out).toMatch(/Couldn't verify signature|tsig verify failure/i);
  });

  test('dig gets NOTAUTH BADSIG when it signs with another secret', async () => {
    const { out } = await sh(digArgs(served.udp.port, false, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='));
    expect(out).toMatch(/status: NOTAUTH/);
    expect(out).toMatch(/BADSIG/);
  });

  test.each<Transport>(['udp', 'tcp'])('kdig verifies the signed answer over %s', async (t) => {
    const port = t === 'udp' ? served.udp.port : served.tcp.port;
    const { out } = await sh([KDIG!, '-b', CLIENT_503, '-p', String(port), '@127.0.0.1', KOJIMA, 'A', '+retry=0', '+timeout=2', ...(t === 'tcp' ? ['+tcp'] : []), '-y', `hmac-sha256:dnsseal-test:${SECRET}`]);
    expect(out).not.toMatch(/WARNING: reply verification|failed to verify/i);
    expect(out).toContain('status: NOERROR');
    expect(out).toMatch(/TSIG\s+hmac-sha256\. \d+ 300 32 \S+ \d+ NOERROR 0/);
  });

  test.each<Transport>(['udp', 'tcp'])('kdig warns when the answer MAC is damaged over %s', async (t) => {
    const port = t === 'udp' ? tampered.udp.port : tampered.tcp.port;
    const { out } = await sh([KDIG!, '-p', String(port), '@127.0.0.1', KOJIMA, 'A', '+retry=0', '+timeout=2', ...(t === 'tcp' ? ['+tcp'] : []), '-y', `hmac-sha256:dnsseal-test:${SECRET}`]);
    expect(out).toMatch(/failed to verify TSIG|reply verification/i);
  });

  test.each<Transport>(['udp', 'tcp'])('knotd verifies our signed query and we verify its signed answer over %s', async (t) => {
    const ctx = { keyring, keyName: 'dnsseal-test', clock: realClock, channels: new ServerChannels() };
    const signed = signQuery(makeQuery(KOJIMA), ctx);
    const answer = await ask(t, knot.port, signed.wire);
    const v = verifyResponse(answer, signed.mac, ctx);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.unsigned[3]! & 0x0f).toBe(0); // NOERROR: knot accepted our TSIG (its ACL needs the key)
      expect(v.annotation).toBeNull(); // knot knows nothing of dnsseal policy
    }
  });

  test.each<Transport>(['udp', 'tcp'])('gets knotd’s BADSIG when our query MAC is damaged over %s', async (t) => {
    const ctx = { keyring, keyName: 'dnsseal-test', clock: realClock, channels: new ServerChannels() };
    const signed = signQuery(makeQuery(KOJIMA), ctx);
    const spans = walkMessage(signed.wire);
    const rec = spans.records[spans.records.length - 1]!;
    const bad = signed.wire.slice();
    bad[rec.rdStart + canonicalName('hmac-sha256').length + 10]! ^= 1;
    const answer = await ask(t, knot.port, bad);
    expect(answer[3]! & 0x0f).toBe(9); // NOTAUTH: knot checked our MAC
    const v = verifyResponse(answer, signed.mac, ctx);
    expect(v.ok ? 'ok' : v.code).toBe('tsig_error');
  });

  test.each<Transport>(['udp', 'tcp'])('refuses knotd’s BADKEY answer when we sign with a key it does not accept over %s', async (t) => {
    const rogue = parseTsigKeyFlag('not-on-knot:hmac-sha256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');
    const ctx = { keyring: new StaticKeyring([rogue]), keyName: 'not-on-knot', clock: realClock, channels: new ServerChannels() };
    const signed = signQuery(makeQuery(KOJIMA), ctx);
    const v = verifyResponse(await ask(t, knot.port, signed.wire), signed.mac, ctx);
    expect(v.ok ? 'ok' : v.code).toBe('tsig_error');
  });

  test.each<Transport>(['udp', 'tcp'])('annotates answers it forwards from a TSIG-less upstream over %s', async (t) => {
    const p = new ProxySide(realClock, CLIENT_502);
    const v = await p.query(t, t === 'udp' ? forwarding.udp.port : forwarding.tcp.port, KOJIMA);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.unsigned[3]! & 0x0f).toBe(0);
      expect(decodePolicyOption(v.unsigned)).toMatchObject({ table: '502', channel: { name: 'hub-a' } });
    }
    expect(p.registrations).toMatchObject([{ addrs: [KOJIMA_ADDR], channel: { name: 'server:hub-a' } }]);
  });
});
