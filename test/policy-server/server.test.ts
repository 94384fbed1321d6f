import { describe, expect, test } from 'bun:test';
import * as dnsPacket from 'dns-packet';
import { decodePolicyOption } from '../../src/dns/policy-option.ts';
import { parseQuery } from '../../src/dns/query.ts';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import { parseTsigRecord, stripTsig, tsigSign, tsigVerify, walkMessage, TsigRcode } from '../../src/dns/tsig.ts';
import { parseTsigKeyFlag } from '../../src/dns/tsig-key.ts';
import type { ClientInfo } from '../../src/proxy/handler.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { silentLogger } from '../../src/util/log.ts';
import { encodeClientSubnet } from '../../src/policy-server/client-subnet.ts';
import { PolicyServer, RCODE_NOTAUTH, type Resolver } from '../../src/policy-server/server.ts';
import { Zone } from '../../src/policy-server/zone.ts';
import { CLIENT_502, CLIENT_503, GW_KEY, KEY, KOJIMA, figure6State, keyring, makeQuery } from './helpers.ts';

const T0 = 1_795_554_523_000;
const udp = (address: string): ClientInfo => ({ address, port: 5300, transport: 'udp' });
const tcp = (address: string): ClientInfo => ({ address, port: 5300, transport: 'tcp' });
const rcode = (m: Uint8Array) => m[3]! & 0x0f;
const lastTsig = (m: Uint8Array) => {
  const spans = walkMessage(m);
  const rec = spans.records[spans.records.length - 1]!;
  return rec.type === 250 ? parseTsigRecord(m, rec) : null;
};

function setup(over: Parameters<typeof figure6State>[0] = {}) {
  const clock = new FakeClock(T0);
  const metrics = new Metrics();
  const server = new PolicyServer(figure6State(over), { clock, log: silentLogger, metrics });
  const sign = (q: Uint8Array, key = KEY, at = clock) => tsigSign(q, { key, clock: at });
  return { clock, server, sign, metrics };
}

describe('policy-server/server', () => {
  test('signs and annotates the answer when the query is signed', async () => {
    const { server, sign, clock } = setup();
    const q = sign(makeQuery(KOJIMA));
    const a = (await server.handle(q.wire, udp(CLIENT_502)))!;
    expect(tsigVerify(a, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
    expect(decodePolicyOption(stripTsig(a))).toMatchObject({ table: '502', channel: { name: 'hub-a' } });
  });

  test('answers NOTAUTH with an unsigned BADKEY TSIG when the key is unknown', async () => {
    const { server, sign } = setup();
    const rogue = parseTsigKeyFlag('rogue:hmac-sha256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');
    const a = (await server.handle(sign(makeQuery(KOJIMA), rogue).wire, udp(CLIENT_502)))!;
    expect(rcode(a)).toBe(RCODE_NOTAUTH);
    expect(lastTsig(a)).toMatchObject({ keyName: 'rogue', error: TsigRcode.BADKEY, mac: new Uint8Array(0) });
    expect(decodePolicyOption(stripTsig(a))).toBeNull();
  });

  test('answers NOTAUTH with an unsigned BADSIG TSIG when the MAC is wrong', async () => {
    const { server, sign } = setup();
    const q = sign(makeQuery(KOJIMA)).wire;
    q[q.length - 10]! ^= 1; // inside the MAC (last 6 octets are id/error/other len)
    const a = (await server.handle(q, udp(CLIENT_502)))!;
    expect(rcode(a)).toBe(RCODE_NOTAUTH);
    expect(lastTsig(a)).toMatchObject({ error: TsigRcode.BADSIG, mac: new Uint8Array(0) });
  });

  test('answers a signed BADTIME carrying the server time when the query is too old', async () => {
    const { server, sign, clock } = setup();
    const old = new FakeClock(T0 - 400_000);
    const q = sign(makeQuery(KOJIMA), KEY, old);
    const a = (await server.handle(q.wire, udp(CLIENT_502)))!;
    expect(rcode(a)).toBe(RCODE_NOTAUTH);
    const t = lastTsig(a)!;
    expect(t.error).toBe(TsigRcode.BADTIME);
    expect([...t.otherData]).toEqual([0, 0, ...[24, 16, 8, 0].map((s) => ((T0 / 1000) >>> s) & 0xff)]);
    // Signed with the request MAC: the client can tell it is genuine, and still refuses it.
    const v = tsigVerify(a, { keyring, clock, requestMac: q.mac });
    expect(v.ok ? 'ok' : [v.code, v.rcode]).toEqual(['tsig_error', TsigRcode.BADTIME]);
  });

  test('answers FORMERR without TSIG when the query TSIG is not last', async () => {
    const { server, sign } = setup();
    const q = sign(makeQuery(KOJIMA)).wire;
    const bad = Uint8Array.from([...q, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
    bad[11]! += 1;
    const a = (await server.handle(bad, udp(CLIENT_502)))!;
    expect(rcode(a)).toBe(1);
    expect(lastTsig(a)).toBeNull();
  });

  test('refuses unsigned queries when TSIG is required', async () => {
    const { server } = setup({ requireTsig: true });
    expect(rcode((await server.handle(makeQuery(KOJIMA), udp(CLIENT_502)))!)).toBe(5);
  });

  test('annotates unsigned answers when annotate is all', async () => {
    const { server } = setup({ annotate: 'all' });
    const a = (await server.handle(makeQuery(KOJIMA), udp(CLIENT_503)))!;
    expect(decodePolicyOption(a)).toMatchObject({ table: '503', channel: { name: 'peer-b' } });
  });

  test('signs but does not annotate when the query has no OPT', async () => {
    const { server, sign, clock } = setup();
    const plain = new Uint8Array(dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: KOJIMA }] }));
    const q = sign(plain);
    const a = (await server.handle(q.wire, udp(CLIENT_502)))!;
    expect(tsigVerify(a, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
    expect(walkMessage(stripTsig(a)).records.some((r) => r.type === 41)).toBe(false);
  });

  test('answers FORMERR signed when a trusted gateway sends a malformed client subnet', async () => {
    const { server, sign, clock } = setup();
    const ecs = encodeClientSubnet(Uint8Array.from([127, 0, 0, 2]), 32);
    const q = sign(makeQuery(KOJIMA, { ecs: Uint8Array.from([...ecs, 9]) }), GW_KEY);
    const a = (await server.handle(q.wire, udp('127.0.0.9')))!;
    expect(rcode(a)).toBe(1);
    expect(tsigVerify(a, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
  });

  test('keeps a signed UDP answer within the client size by truncating when the zone answer is large', async () => {
    const many = Array.from({ length: 60 }, (_, i) => `big A 198.51.100.${i + 1}`).join('\n');
    const { server, sign, clock } = setup({ zone: Zone.parse(`$ORIGIN nec.com.\n${many}\n`, 'big.zone') });
    const q = sign(makeQuery('big.nec.com'));
    const a = (await server.handle(q.wire, udp(CLIENT_502)))!;
    expect(a.length).toBeLessThanOrEqual(1232);
    expect(a[2]! & 0x02).toBe(0x02); // TC
    expect(tsigVerify(a, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
    const overTcp = (await server.handle(q.wire, tcp(CLIENT_502)))!;
    expect(overTcp[2]! & 0x02).toBe(0);
    expect(tsigVerify(overTcp, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
  });

  test.each([true, false])('never exceeds the UDP limit when the answer size nears it (EDNS %p)', async (edns) => {
    const limit = edns ? 1232 : 512;
    for (let n = 1; n <= 50; n++) {
      const recs = Array.from({ length: n }, (_, i) => `kojima.jinji A 198.51.100.${i + 1}`).join('\n');
      const { server, sign, clock } = setup({ zone: Zone.parse(`$ORIGIN nec.com.\n${recs}\n`, 'n.zone') });
      const base = edns ? makeQuery(KOJIMA) : new Uint8Array(dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: KOJIMA }] }));
      const q = sign(base);
      const a = (await server.handle(q.wire, udp(CLIENT_502)))!;
      expect(a.length).toBeLessThanOrEqual(limit);
      expect(tsigVerify(a, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
    }
  });

  test('answers SERVFAIL signed when the upstream fails', async () => {
    const failing: Resolver = { forward: () => Promise.reject(new Error('boom')) };
    const { server, sign, clock } = setup({ zone: null, resolver: failing });
    const q = sign(makeQuery(KOJIMA));
    const a = (await server.handle(q.wire, udp(CLIENT_502)))!;
    expect(rcode(a)).toBe(2);
    expect(tsigVerify(a, { keyring, clock, requestMac: q.mac }).ok).toBe(true);
  });

  test('finishes in-flight queries on the old state and new ones on the new state when reloaded', async () => {
    // A resolver that holds queries until released, to reload while they are in flight.
    const held: Array<() => void> = [];
    const zone = Zone.parse(`$ORIGIN nec.com.\nkojima.jinji A 198.51.100.7\n`, 'z');
    const slow: Resolver = {
      forward: (query) =>
        new Promise((resolve) =>
          held.push(() => {
            const bytes = zone.answer(query);
            resolve({ bytes, scan: scanAnswer(bytes, query.question.length, query.qname) });
          }),
        ),
    };
    const { server, sign, clock } = setup({ zone: null, resolver: slow });
    const queries = Array.from({ length: 50 }, () => sign(makeQuery(KOJIMA)));
    const inflight = queries.map((q) => server.handle(q.wire, udp(CLIENT_502)));
    // Reload: client 127.0.0.2 now maps to table 503.
    const next = figure6State({ zone: null, resolver: slow });
    const { Policy } = await import('../../src/policy/policy.ts');
    const { figure6Config } = await import('./helpers.ts');
    const cfg = figure6Config();
    cfg.clients = [{ cidr: `${CLIENT_502}/32`, table: '503' }];
    next.policy = Policy.fromConfig(cfg);
    server.swap(next);
    const after = sign(makeQuery(KOJIMA));
    const afterP = server.handle(after.wire, udp(CLIENT_502));
    while (held.length) held.shift()!();
    const answers = await Promise.all(inflight);
    expect(answers.every((a) => a !== null)).toBe(true);
    for (const [i, a] of answers.entries()) {
      expect(tsigVerify(a!, { keyring, clock, requestMac: queries[i]!.mac }).ok).toBe(true);
      expect(decodePolicyOption(stripTsig(a!))?.table).toBe('502');
    }
    expect(decodePolicyOption(stripTsig((await afterP)!))?.table).toBe('503');
  });

  test('counts outcomes and TSIG results when serving', async () => {
    const { server, sign, metrics } = setup();
    await server.handle(sign(makeQuery(KOJIMA)).wire, udp(CLIENT_502));
    await server.handle(makeQuery(KOJIMA), udp(CLIENT_502));
    const text = metrics.expose();
    expect(text).toContain('dnsseal_policy_server_queries_total{outcome="annotated"} 1');
    expect(text).toContain('dnsseal_policy_server_queries_total{outcome="answer"} 1');
    expect(text).toContain('dnsseal_policy_server_tsig_total{result="ok"} 1');
    expect(text).toContain('dnsseal_policy_server_tsig_total{result="tsig_missing"} 1');
  });

  test('drops responses and answers FORMERR to garbage when receiving', async () => {
    const { server } = setup();
    const q = makeQuery(KOJIMA);
    q[2]! |= 0x80; // QR: a response
    expect(await server.handle(q, udp(CLIENT_502))).toBeNull();
    expect(parseQuery(Uint8Array.from([0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0])).kind).toBe('error');
    expect(rcode((await server.handle(Uint8Array.from([0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]), udp(CLIENT_502)))!)).toBe(1);
  });
});
