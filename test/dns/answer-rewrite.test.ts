/**
 * Answer rewrite (intercept's `map`, host/gateway's `keep`): golden bytes, decode with dns-packet, compression-pointer relocation when
 * records are removed, SVCB hints, RRSIG removal, AD, TTL cap, bounds (every truncation is a
 * WireError, never a crash or a half answer).
 */
import { describe, expect, test } from 'bun:test';
import * as dnsPacket from 'dns-packet';
import { parseSvcb, SVC_KEY_ALPN, SVC_KEY_IPV4HINT, SVC_KEY_IPV6HINT, SVC_KEY_MANDATORY, encodeSvcb } from '../../src/dns/svcb.ts';
import { WireError } from '../../src/dns/wire.ts';
import { rewriteAnswer } from '../../src/dns/answer-rewrite.ts';
import { parseIPv4, parseIPv6 } from '../../src/util/ip.ts';
import { hex } from '../dns/fixtures.ts';

/** A tiny wire writer for hand-made messages (names with explicit compression pointers). */
class W {
  b: number[] = [];
  get at(): number {
    return this.b.length;
  }
  u16(v: number): this {
    this.b.push(v >> 8, v & 0xff);
    return this;
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v & 0xffff);
  }
  raw(x: ArrayLike<number>): this {
    for (let i = 0; i < x.length; i++) this.b.push(x[i]!);
    return this;
  }
  /** Labels, then a pointer to `ptr` or the root. */
  name(labels: string[], ptr?: number): this {
    for (const l of labels) this.raw([l.length, ...Buffer.from(l)]);
    return ptr === undefined ? this.raw([0]) : this.u16(0xc000 | ptr);
  }
  rr(owner: () => void, type: number, ttl: number, rdata: () => void): this {
    owner();
    this.u16(type).u16(1).u32(ttl);
    const lenAt = this.at;
    this.u16(0);
    rdata();
    const n = this.at - lenAt - 2;
    this.b[lenAt] = n >> 8;
    this.b[lenAt + 1] = n & 0xff;
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.b);
  }
}

const v4 = (s: string) => parseIPv4(s)!;
const v6 = (s: string) => parseIPv6(s)!;

function header(w: W, flags: number, an: number, ns: number, ar: number): W {
  return w.u16(0x1234).u16(flags).u16(1).u16(an).u16(ns).u16(ar);
}

describe('dns/answer-rewrite', () => {
  test('matches the golden bytes when two A records are rewritten in place', () => {
    // id 1234, QR RD RA AD, 1 question www.corp.example/A, two A records (owner c00c), TTL 300
    const upstream = hex(`
      1234 81a0 0001 0002 0000 0000
      03777777 04636f7270 076578616d706c65 00 0001 0001
      c00c 0001 0001 0000012c 0004 c000020a
      c00c 0001 0001 0000012c 0004 c000020b`);
    const golden = hex(`
      1234 8180 0001 0002 0000 0000
      03777777 04636f7270 076578616d706c65 00 0001 0001
      c00c 0001 0001 0000003c 0004 64400001
      c00c 0001 0001 0000003c 0004 64400002`);
    const map = new Map([
      ['192.0.2.10', '100.64.0.1'],
      ['192.0.2.11', '100.64.0.2'],
    ]);
    const r = rewriteAnswer(upstream, { map, ttlCapS: 60 });
    expect(Buffer.from(r.bytes).toString('hex')).toBe(Buffer.from(golden).toString('hex'));
    expect(r).toMatchObject({ rewritten: 2, removed: 0 });
    const d = dnsPacket.decode(Buffer.from(r.bytes));
    expect(d.answers!.map((a) => [a.type, (a as { data: string }).data, (a as { ttl?: number }).ttl])).toEqual([
      ['A', '100.64.0.1', 60],
      ['A', '100.64.0.2', 60],
    ]);
  });

  test.each([
    [30, 30],
    [60, 60],
    [86400, 60],
  ])('caps a TTL of %i s to %i s when the cap is 60 s', (ttl, want) => {
    const w = header(new W(), 0x8180, 1, 0, 0).name(['a', 'example']).u16(1).u16(1);
    w.rr(() => w.u16(0xc00c), 1, ttl, () => w.raw(v4('192.0.2.1')));
    const r = rewriteAnswer(w.bytes(), { map: new Map([['192.0.2.1', '100.64.0.9']]), ttlCapS: 60 });
    expect((dnsPacket.decode(Buffer.from(r.bytes)).answers![0] as { ttl?: number }).ttl).toBe(want);
  });

  test('relocates and expands compression pointers when records before them are removed', () => {
    const w = header(new W(), 0x81a0, 5, 0, 1);
    w.name(['www', 'corp', 'example']).u16(1).u16(1); // question at 12; "corp" at 16
    // 1: www CNAME edge.corp.example (edge + pointer to "corp.example" in the question)
    let edgeAt = 0;
    w.rr(() => w.u16(0xc00c), 5, 300, () => {
      edgeAt = w.at;
      w.name(['edge'], 16);
    });
    // 2: an unmapped A for a name written in full here (removed) ...
    let sigOwnerAt = 0;
    w.rr(() => {
      sigOwnerAt = w.at;
      w.name(['other', 'corp', 'example']);
    }, 1, 300, () => w.raw(v4('192.0.2.99')));
    // 3: RRSIG over edge's A set (removed)
    w.rr(() => w.u16(0xc000 | edgeAt), 46, 300, () => w.u16(1).raw([13, 3]).u32(300).u32(0).u32(0).u16(1).name(['corp', 'example']).raw([1, 2, 3, 4]));
    // 4: edge A 192.0.2.10 (owner: pointer into the CNAME rdata, which moves)
    w.rr(() => w.u16(0xc000 | edgeAt), 1, 300, () => w.raw(v4('192.0.2.10')));
    // 5: TXT whose owner points INTO the removed record 2 ("other.corp.example"): must be expanded
    w.rr(() => w.u16(0xc000 | sigOwnerAt), 16, 300, () => w.raw([2, 0x68, 0x69]));
    // OPT
    w.raw([0]).u16(41).u16(1232).u32(0x8000).u16(0);
    const r = rewriteAnswer(w.bytes(), { map: new Map([['192.0.2.10', '100.64.0.1']]) });
    expect(r).toMatchObject({ rewritten: 1, removed: 2 });
    const d = dnsPacket.decode(Buffer.from(r.bytes));
    expect(d.flag_ad).toBe(false);
    expect(d.answers!.map((a) => [a.name, a.type, a.type === 'TXT' ? 'txt' : (a as { data: unknown }).data])).toEqual([
      ['www.corp.example', 'CNAME', 'edge.corp.example'],
      ['edge.corp.example', 'A', '100.64.0.1'],
      ['other.corp.example', 'TXT', 'txt'],
    ]);
    expect(d.additionals!.map((a) => a.type)).toEqual(['OPT']);
  });

  test('keeps the RRSIG of a set it did not touch when other sets were rewritten', () => {
    const w = header(new W(), 0x81a0, 3, 0, 0).name(['a', 'example']).u16(1).u16(1);
    w.rr(() => w.u16(0xc00c), 1, 300, () => w.raw(v4('192.0.2.1')));
    w.rr(() => w.u16(0xc00c), 46, 300, () => w.u16(1).raw([13, 2]).u32(300).u32(0).u32(0).u16(1).name(['example']).raw([9]));
    w.rr(() => w.u16(0xc00c), 46, 300, () => w.u16(16).raw([13, 2]).u32(300).u32(0).u32(0).u16(1).name(['example']).raw([9]));
    const r = rewriteAnswer(w.bytes(), { map: new Map([['192.0.2.1', '100.64.0.1']]) });
    const d = dnsPacket.decode(Buffer.from(r.bytes));
    expect(d.answers!.map((a) => (a.type === 'RRSIG' ? `RRSIG/${(a.data as { typeCovered: string }).typeCovered}` : a.type))).toEqual(['A', 'RRSIG/TXT']);
  });

  test('rewrites AAAA records and removes one without an intercept address when the pool lacks it', () => {
    const w = header(new W(), 0x8180, 2, 0, 0).name(['a', 'example']).u16(28).u16(1);
    w.rr(() => w.u16(0xc00c), 28, 120, () => w.raw(v6('fd00:aa91::1001')));
    w.rr(() => w.u16(0xc00c), 28, 120, () => w.raw(v6('2001:db8::1')));
    const r = rewriteAnswer(w.bytes(), { map: new Map([['fd00:aa91::1001', 'fd00:fe80::3090']]) });
    const d = dnsPacket.decode(Buffer.from(r.bytes));
    expect(d.answers!.map((a) => (a as { data: string }).data)).toEqual(['fd00:fe80::3090']);
  });

  test('rewrites and removes HTTPS hints when some hint addresses have no intercept address', () => {
    const rd = encodeSvcb(1, '', [
      { key: SVC_KEY_ALPN, value: Uint8Array.from([2, 0x68, 0x32]) },
      { key: SVC_KEY_IPV4HINT, value: Uint8Array.from([...v4('192.0.2.10'), ...v4('192.0.2.11')]) },
      { key: SVC_KEY_IPV6HINT, value: v6('2001:db8::5') },
    ]);
    const w = header(new W(), 0x8180, 1, 0, 0).name(['svc', 'example']).u16(65).u16(1);
    w.rr(() => w.u16(0xc00c), 65, 3600, () => w.raw(rd));
    const r = rewriteAnswer(w.bytes(), { map: new Map([['192.0.2.10', '100.64.0.5']]), ttlCapS: 60 });
    const head = 12 + 13 + 4;
    const rdOff = head + 2 + 10;
    const rdLen = (r.bytes[rdOff - 2]! << 8) | r.bytes[rdOff - 1]!;
    const svc = parseSvcb(r.bytes, rdOff, rdLen);
    expect(svc).toMatchObject({ priority: 1, target: '', keys: [SVC_KEY_ALPN, SVC_KEY_IPV4HINT], ipv4hint: ['100.64.0.5'], ipv6hint: [] });
    expect((dnsPacket.decode(Buffer.from(r.bytes)).answers![0] as { ttl?: number }).ttl).toBe(60);
  });

  test('removes an HTTPS record when its mandatory hint key is left without addresses', () => {
    const rd = encodeSvcb(1, 'svc.example', [
      { key: SVC_KEY_MANDATORY, value: Uint8Array.from([0, SVC_KEY_IPV4HINT]) },
      { key: SVC_KEY_IPV4HINT, value: v4('192.0.2.10') },
    ]);
    const w = header(new W(), 0x8180, 1, 0, 0).name(['svc', 'example']).u16(65).u16(1);
    w.rr(() => w.u16(0xc00c), 65, 3600, () => w.raw(rd));
    const r = rewriteAnswer(w.bytes(), { map: new Map() });
    expect(r.removed).toBe(1);
    expect(dnsPacket.decode(Buffer.from(r.bytes)).answers).toEqual([]);
  });

  test('gives identical bytes when a rewritten answer is rewritten again with its own mapping', () => {
    const w = header(new W(), 0x81a0, 2, 0, 0).name(['a', 'example']).u16(1).u16(1);
    w.rr(() => w.u16(0xc00c), 1, 300, () => w.raw(v4('192.0.2.1')));
    w.rr(() => w.u16(0xc00c), 46, 300, () => w.u16(1).raw([13, 2]).u32(300).u32(0).u32(0).u16(1).name(['example']).raw([9]));
    const once = rewriteAnswer(w.bytes(), { map: new Map([['192.0.2.1', '100.64.0.1']]), ttlCapS: 60 }).bytes;
    const twice = rewriteAnswer(once, { map: new Map([['100.64.0.1', '100.64.0.1']]) }).bytes;
    expect(Buffer.from(twice).equals(Buffer.from(once))).toBe(true);
    // and dns-packet's re-encoding of it rewrites to the same records
    const re = dnsPacket.encode(dnsPacket.decode(Buffer.from(once)));
    expect(dnsPacket.decode(Buffer.from(rewriteAnswer(re, { map: new Map([['100.64.0.1', '100.64.0.1']]) }).bytes)).answers).toEqual(dnsPacket.decode(Buffer.from(once)).answers);
  });

  test('throws WireError, never anything else, when the answer is cut at any length', () => {
    const w = header(new W(), 0x8180, 2, 0, 0).name(['a', 'example']).u16(1).u16(1);
    w.rr(() => w.u16(0xc00c), 5, 300, () => w.name(['b'], 12));
    w.rr(() => w.name(['b'], 12), 1, 300, () => w.raw(v4('192.0.2.1')));
    const full = w.bytes();
    expect(() => rewriteAnswer(full, { map: new Map() })).not.toThrow();
    for (let n = 0; n < full.length; n++) {
      expect(() => rewriteAnswer(full.slice(0, n), { map: new Map() })).toThrow(WireError);
    }
  });

  test.each([
    ['a forward pointer', [0xc0, 0x40]],
    ['a self pointer', [0xc0, 27]],
    ['a reserved label type', [0x80, 0x01]],
  ])('throws WireError when an owner name has %s', (_what, owner) => {
    const w = header(new W(), 0x8180, 1, 0, 0).name(['a', 'example']).u16(1).u16(1);
    w.raw(owner).u16(1).u16(1).u32(1).u16(4).raw(v4('192.0.2.1'));
    expect(() => rewriteAnswer(w.bytes(), { map: new Map() })).toThrow(WireError);
  });

  // Host and gateway modes (issue 11 item 10): the registered addresses stay as they are, every
  // other address record goes, whatever its section.
  test('removes the addresses it does not keep and leaves kept records and their signatures untouched when given keep', () => {
    const w = header(new W(), 0x81a0, 4, 0, 2).name(['www', 'corp', 'example']).u16(1).u16(1);
    w.rr(() => w.u16(0xc00c), 1, 300, () => w.raw(v4('192.0.2.10')));
    w.rr(() => w.u16(0xc00c), 46, 300, () => w.u16(1).raw([13, 3]).u32(300).u32(0).u32(0).u16(1).name(['corp', 'example']).raw([1, 2]));
    let offAt = 0;
    w.rr(() => {
      offAt = w.at;
      w.name(['evil', 'example']);
    }, 1, 86400, () => w.raw(v4('203.0.113.66')));
    w.rr(() => w.u16(0xc000 | offAt), 46, 300, () => w.u16(1).raw([13, 2]).u32(300).u32(0).u32(0).u16(1).name(['example']).raw([3]));
    w.rr(() => w.name(['ns', 'corp', 'example']), 28, 300, () => w.raw(v6('2001:db8::53')));
    w.raw([0]).u16(41).u16(1232).u32(0x8000).u16(0);
    const r = rewriteAnswer(w.bytes(), { keep: new Set(['192.0.2.10']) });
    expect(r).toMatchObject({ rewritten: 0, removed: 3 });
    const d = dnsPacket.decode(Buffer.from(r.bytes));
    expect(d.flag_ad).toBe(false);
    const data = (a: dnsPacket.Answer) => (a as { data: unknown }).data;
    expect(d.answers!.map((a) => [a.name, a.type, a.type === 'A' ? data(a) : (data(a) as { typeCovered: string }).typeCovered, (a as { ttl?: number }).ttl])).toEqual([
      ['www.corp.example', 'A', '192.0.2.10', 300],
      ['www.corp.example', 'RRSIG', 'A', 300],
    ]);
    expect(d.additionals!.map((a) => a.type)).toEqual(['OPT']);
  });

  test('gives back the same bytes when it keeps every address', () => {
    const w = header(new W(), 0x81a0, 2, 0, 0).name(['a', 'example']).u16(28).u16(1);
    w.rr(() => w.u16(0xc00c), 28, 7200, () => w.raw(v6('2001:db8::1')));
    w.rr(() => w.u16(0xc00c), 28, 7200, () => w.raw(v6('2001:db8::2')));
    const r = rewriteAnswer(w.bytes(), { keep: new Set(['2001:db8::1', '2001:db8::2']) });
    expect(r).toMatchObject({ rewritten: 0, removed: 0 });
    expect(Buffer.from(r.bytes).equals(Buffer.from(w.bytes()))).toBe(true);
  });

  test('keeps the hints it keeps and drops the others when an HTTPS record carries both', () => {
    const rd = encodeSvcb(1, '', [
      { key: SVC_KEY_IPV4HINT, value: Uint8Array.from([...v4('192.0.2.10'), ...v4('198.51.100.7')]) },
      { key: SVC_KEY_IPV6HINT, value: v6('2001:db8::5') },
    ]);
    const w = header(new W(), 0x8180, 1, 0, 0).name(['svc', 'example']).u16(65).u16(1);
    w.rr(() => w.u16(0xc00c), 65, 3600, () => w.raw(rd));
    const r = rewriteAnswer(w.bytes(), { keep: new Set(['192.0.2.10']) });
    const rdOff = 12 + 13 + 4 + 2 + 10;
    const svc = parseSvcb(r.bytes, rdOff, (r.bytes[rdOff - 2]! << 8) | r.bytes[rdOff - 1]!);
    expect(svc).toMatchObject({ keys: [SVC_KEY_IPV4HINT], ipv4hint: ['192.0.2.10'], ipv6hint: [] });
    expect((dnsPacket.decode(Buffer.from(r.bytes)).answers![0] as { ttl?: number }).ttl).toBe(3600);
  });
});
