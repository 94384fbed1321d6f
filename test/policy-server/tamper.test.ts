import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { POLICY_OPTION_CODE } from '../../src/dns/policy-option.ts';
import { canonicalName, stripTsig, tsigSign, tsigVerify, walkMessage, type TsigFailureCode } from '../../src/dns/tsig.ts';
import { parseTsigKeyFlag } from '../../src/dns/tsig-key.ts';
import type { QueryHandler } from '../../src/proxy/handler.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { CLIENT_502, KEY, KOJIMA, ProxySide, figure6State, keyring, serve, startServer, type Served, type Transport } from './helpers.ts';

// A man in the middle between proxy and policy server: it gets the genuine signed answer and
// changes it. Every change must make the proxy refuse the answer and register nothing.
const clock = new FakeClock(1_795_554_523_000);
const ROGUE = parseTsigKeyFlag('rogue-key:hmac-sha256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');

type Mutation = (answer: Uint8Array, query: Uint8Array) => Uint8Array;

function tsigSpan(msg: Uint8Array) {
  const spans = walkMessage(msg);
  return { spans, rec: spans.records[spans.records.length - 1]! };
}
function macOffset(msg: Uint8Array): number {
  return tsigSpan(msg).rec.rdStart + canonicalName('hmac-sha256').length + 10;
}
function requestMac(query: Uint8Array): Uint8Array {
  const v = tsigVerify(query, { keyring, clock });
  if (!v.ok) throw new Error(v.message);
  return v.tsig.mac;
}
function setArcount(msg: Uint8Array, n: number): void {
  msg[10] = n >> 8;
  msg[11] = n & 0xff;
}
function truncateMac(n: number): Mutation {
  return (a) => {
    const { rec } = tsigSpan(a);
    const off = macOffset(a);
    const out = Uint8Array.from([...a.subarray(0, off - 2), 0, n, ...a.subarray(off, off + n), ...a.subarray(off + 32)]);
    const rdlen = rec.rdLength - 32 + n;
    out[rec.rdStart - 2] = rdlen >> 8;
    out[rec.rdStart - 1] = rdlen & 0xff;
    return out;
  };
}

const MUTATIONS: Array<[string, Mutation, TsigFailureCode]> = [
  ['unsigned answer', (a) => stripTsig(a), 'tsig_missing'],
  ['wrong MAC', (a) => { const m = a.slice(); m[macOffset(m)]! ^= 0x80; return m; }, 'tsig_badsig'],
  ['a forged annotation', (a) => {
    const m = a.slice();
    const code = [POLICY_OPTION_CODE >> 8, POLICY_OPTION_CODE & 0xff];
    const at = m.findIndex((_, i) => m[i] === code[0] && m[i + 1] === code[1]);
    m[at + 4 + 2]! = 2; // channel kind tunnel → peer
    return m;
  }, 'tsig_badsig'],
  ['unknown key', (a, q) => tsigSign(stripTsig(a), { key: ROGUE, clock, requestMac: requestMac(q) }).wire, 'tsig_badkey'],
  ['time outside fudge', (a, q) => { const late = new FakeClock(clock.nowMs() + 301_000); return tsigSign(stripTsig(a), { key: KEY, clock: late, requestMac: requestMac(q) }).wire; }, 'tsig_badtime'],
  ['an answer signed for another query', (a) => tsigSign(stripTsig(a), { key: KEY, clock }).wire, 'tsig_badsig'],
  ['TSIG not last', (a) => {
    // Move the TSIG in front of the OPT: both still in the additional section.
    const { spans, rec } = tsigSpan(a);
    const opt = spans.records.find((r) => r.type === 41)!;
    return Uint8Array.from([...a.subarray(0, opt.start), ...a.subarray(rec.start, rec.end), ...a.subarray(opt.start, rec.start)]);
  }, 'tsig_not_last'],
  ['a record appended after TSIG', (a) => {
    const m = Uint8Array.from([...a, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 66]);
    setArcount(m, walkMessage(a).arcount + 1);
    return m;
  }, 'tsig_not_last'],
  ['bytes appended after TSIG', (a) => Uint8Array.from([...a, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 66]), 'tsig_trailing'],
  ['MAC truncated to 15 octets', truncateMac(15), 'tsig_badtrunc'],
  ['MAC truncated to 10 octets', truncateMac(10), 'tsig_badtrunc'],
];

let served: Served;
let mutation: Mutation = (a) => a;

beforeAll(async () => {
  const server = startServer(figure6State(), clock);
  const relay: QueryHandler = async (q, c) => {
    // No copy on purpose: over TCP `q` is a Buffer view, and verifying must not write to it.
    const query = q;
    const a = await server.handle(query, c);
    return a ? mutation(a, query) : null;
  };
  served = await serve(relay);
});
afterAll(async () => served.close());

const port = (t: Transport) => (t === 'udp' ? served.udp.port : served.tcp.port);

describe('policy-server proxy-side verification', () => {
  test.each<Transport>(['udp', 'tcp'])('registers the genuine answer when nothing is changed over %s', async (t) => {
    mutation = (a) => a;
    const p = new ProxySide(clock, CLIENT_502);
    const v = await p.query(t, port(t), KOJIMA);
    expect(v.ok).toBe(true);
    expect(p.registrations).toHaveLength(1);
  });

  const cases = MUTATIONS.flatMap(([name, m, code]) => (['udp', 'tcp'] as Transport[]).map((t) => [name, t, m, code] as const));
  test.each(cases)('refuses and registers nothing when the answer has %s over %s', async (_name, t, m, code) => {
    mutation = m;
    const p = new ProxySide(clock, CLIENT_502);
    const v = await p.query(t, port(t), KOJIMA);
    expect(v.ok ? 'ok' : v.code).toBe(code);
    expect(p.registrations).toEqual([]);
  });
});

describe('policy-server PolicyExchange', () => {
  test('accepts the genuine answer after refusing a forged one when used as upstream hooks', async () => {
    const { PolicyExchange, ServerChannels } = await import('../../src/policy-server/proxy-side.ts');
    const { makeQuery, ask } = await import('./helpers.ts');
    mutation = (a) => a;
    const ex = new PolicyExchange({ keyring, keyName: KEY.name, clock, channels: new ServerChannels() });
    const wire = ex.sign(makeQuery(KOJIMA));
    const genuine = await ask('udp', port('udp'), wire, CLIENT_502);
    expect(ex.accept(stripTsig(genuine))).toBe(false); // a forged, unsigned copy arrives first
    expect(ex.refused?.code).toBe('tsig_missing');
    expect(ex.verdict).toBeNull();
    expect(ex.accept(genuine)).toBe(true);
    expect(ex.verdict?.decision?.channel).toMatchObject({ name: 'server:hub-a', kind: 'tunnel' });
  });
});
