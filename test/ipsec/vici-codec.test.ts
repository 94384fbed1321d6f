import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeMessage,
  decodePacket,
  encodeFrame,
  encodeMessage,
  encodePacket,
  FrameReader,
  MAX_SEGMENT,
  PacketType,
  type ViciPacket,
} from '../../src/ipsec/vici-codec.ts';
import { DnssealError } from '../../src/util/errors.ts';

const FIXTURES = join(import.meta.dir, '../fixtures/vici');

/** Reads a `.hex` fixture: whitespace-separated hex bytes, `#` comments. */
function fixture(name: string): Uint8Array {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const hex = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join(' ')
    .trim()
    .split(/\s+/);
  return Uint8Array.from(hex.map((h) => parseInt(h, 16)));
}

const README_TREE = {
  key1: 'value1',
  section1: { 'sub-section': { key2: 'value2' }, list1: ['item1', 'item2'] },
};

function expectDecodeError(fn: () => unknown, code = 'vici_decode'): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DnssealError);
    expect((e as DnssealError).code).toBe(code);
    expect((e as DnssealError).message.startsWith('vici: ')).toBe(true);
    return;
  }
  throw new Error('expected a DnssealError');
}

/** Small deterministic PRNG (mulberry32) so a failing mutation can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ipsec/vici-codec', () => {
  test('encodes the README example to its golden bytes when given the example tree', () => {
    expect(encodeMessage(README_TREE)).toEqual(fixture('readme-example.hex'));
  });

  test('decodes the README example golden bytes to the example tree', () => {
    expect(decodeMessage(fixture('readme-example.hex'))).toEqual(README_TREE);
  });

  test.each<[string, ViciPacket]>([
    ['version-request.frame.hex', { type: PacketType.CMD_REQUEST, name: 'version', message: {} }],
    ['register-ike-updown.frame.hex', { type: PacketType.EVENT_REGISTER, name: 'ike-updown' }],
    [
      'response-failure.frame.hex',
      { type: PacketType.CMD_RESPONSE, message: { success: 'no', errmsg: 'no matching peer conf' } },
    ],
  ])('framed packet matches golden %s when encoded and decoded', (file, pkt) => {
    const golden = fixture(file);
    expect(encodeFrame(encodePacket(pkt))).toEqual(golden);
    const segs = new FrameReader().push(golden);
    expect(segs.length).toBe(1);
    expect(decodePacket(segs[0]!)).toEqual(pkt);
  });

  test.each<ViciPacket>([
    { type: PacketType.CMD_UNKNOWN },
    { type: PacketType.EVENT_CONFIRM },
    { type: PacketType.EVENT_UNKNOWN },
    { type: PacketType.EVENT_UNREGISTER, name: 'list-sa' },
    { type: PacketType.EVENT, name: 'child-updown', message: { up: 'yes', c: { 'child-sas': { x: { state: 'INSTALLED' } } } } },
    { type: PacketType.CMD_REQUEST, name: 'load-conn', message: { 'dnsseal-x': { remote_addrs: ['192.0.2.1'], local: { auth: 'pubkey' } } } },
  ])('round-trips packet type $type when encoded, decoded and re-encoded', (pkt) => {
    const bytes = encodePacket(pkt);
    const back = decodePacket(bytes);
    expect(back).toEqual(pkt);
    expect(encodePacket(back)).toEqual(bytes);
  });

  test('decodes a message embedded at an offset when given a subarray', () => {
    const msg = encodeMessage(README_TREE);
    const buf = new Uint8Array(msg.length + 10);
    buf.set(msg, 7);
    expect(decodeMessage(buf.subarray(7, 7 + msg.length))).toEqual(README_TREE);
  });

  test('keeps binary values when encoding a Uint8Array and decoding raw', () => {
    const blob = Uint8Array.from([0, 1, 2, 255, 254]);
    const msg = encodeMessage({ data: blob, l: [blob] });
    const back = decodeMessage(msg, { raw: true });
    expect(back.data).toEqual(blob);
    expect(back.l).toEqual([blob]);
  });

  test('encodes numbers and booleans as strings when given them', () => {
    expect(decodeMessage(encodeMessage({ timeout: 2000, yes: true }))).toEqual({ timeout: '2000', yes: 'true' });
  });

  test('skips undefined keys when encoding optional fields', () => {
    expect(decodeMessage(encodeMessage({ a: 'x', b: undefined }))).toEqual({ a: 'x' });
  });

  test('keeps a key named __proto__ as data when decoding', () => {
    const back = decodeMessage(encodeMessage(JSON.parse('{"__proto__":"x"}')));
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['__proto__']);
  });

  test.each<[string, Record<string, unknown>]>([
    ['a key over 255 bytes', { ['k'.repeat(256)]: 'v' }],
    ['a value over 65535 bytes', { k: 'v'.repeat(65536) }],
    ['a nested list', { k: [['a']] }],
    ['a section in a list', { k: [{ a: 'b' }] }],
    ['a null value', { k: null }],
  ])('refuses to encode %s', (_what, msg) => {
    expectDecodeError(() => encodeMessage(msg), 'vici_encode');
  });

  test.each<[string, number[]]>([
    ['a truncated key name', [3, 4, 0x6b]],
    ['a truncated value length', [3, 1, 0x6b, 0]],
    ['a value longer than the message', [3, 1, 0x6b, 0, 9, 0x61]],
    ['an unknown element type', [9]],
    ['a SECTION_END at the root', [2]],
    ['an unclosed section', [1, 1, 0x73]],
    ['an unclosed list', [4, 1, 0x6c]],
    ['a LIST_ITEM outside a list', [5, 0, 0]],
    ['a LIST_END outside a list', [6]],
    ['a key/value inside a list', [4, 1, 0x6c, 3, 1, 0x6b, 0, 0, 6]],
    ['a section inside a list', [4, 1, 0x6c, 1, 1, 0x73, 2, 6]],
    ['a duplicate key', [3, 1, 0x6b, 0, 0, 3, 1, 0x6b, 0, 0]],
    ['sections nested 65 deep', Array.from({ length: 65 }, () => [1, 1, 0x73]).flat().concat(Array(65).fill(2))],
  ])('throws vici_decode when a message has %s', (_what, bytes) => {
    expectDecodeError(() => decodeMessage(Uint8Array.from(bytes)));
  });

  test.each<[string, number[]]>([
    ['no bytes', []],
    ['an unknown packet type', [8]],
    ['a truncated name', [0, 5, 0x76]],
    ['a message after EVENT_CONFIRM', [5, 3, 1, 0x6b, 0, 0]],
  ])('throws vici_decode when a packet has %s', (_what, bytes) => {
    expectDecodeError(() => decodePacket(Uint8Array.from(bytes)));
  });

  test('reassembles segments when the stream arrives one byte at a time', () => {
    const a = encodeFrame(encodePacket({ type: PacketType.EVENT_CONFIRM }));
    const b = encodeFrame(encodePacket({ type: PacketType.CMD_RESPONSE, message: README_TREE }));
    const stream = new Uint8Array([...a, ...b]);
    const fr = new FrameReader();
    const got: Uint8Array[] = [];
    for (const byte of stream) got.push(...fr.push(Uint8Array.of(byte)));
    expect(got.length).toBe(2);
    expect(decodePacket(got[1]!)).toEqual({ type: PacketType.CMD_RESPONSE, message: README_TREE });
    expect(fr.buffered()).toBe(0);
  });

  test('returns several segments when one chunk holds them', () => {
    const a = encodeFrame(encodePacket({ type: PacketType.EVENT_CONFIRM }));
    const got = new FrameReader().push(new Uint8Array([...a, ...a, ...a.subarray(0, 3)]));
    expect(got.length).toBe(2);
  });

  test('throws vici_decode when a segment length exceeds 512 KiB', () => {
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, MAX_SEGMENT + 1);
    expectDecodeError(() => new FrameReader().push(head));
  });

  test('refuses to frame a packet larger than 512 KiB', () => {
    expectDecodeError(() => encodeFrame(new Uint8Array(MAX_SEGMENT + 1)), 'vici_encode');
  });

  test('throws nothing but DnssealError when golden packets are randomly mutated', () => {
    const seeds = [
      encodePacket({ type: PacketType.CMD_RESPONSE, message: README_TREE }),
      encodePacket({ type: PacketType.EVENT, name: 'ike-updown', message: { up: 'yes', c: { 'child-sas': { x: { 'local-ts': ['10.0.0.0/8'] } } } } }),
      fixture('readme-example.hex'),
    ];
    const rnd = prng(0x5e51);
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const base = seeds[i % seeds.length]!;
      const b = Array.from(base);
      const edits = 1 + Math.floor(rnd() * 4);
      for (let e = 0; e < edits; e++) {
        const op = rnd();
        const at = Math.floor(rnd() * (b.length + 1));
        if (op < 0.5 && b.length > 0) b[at % b.length] = Math.floor(rnd() * 256);
        else if (op < 0.75) b.splice(at, 1);
        else b.splice(at, 0, Math.floor(rnd() * 256));
      }
      const bytes = Uint8Array.from(b);
      for (const fn of [() => decodePacket(bytes), () => decodeMessage(bytes)]) {
        try {
          fn();
          decoded++;
        } catch (e) {
          if (!(e instanceof DnssealError)) throw new Error(`mutation ${i} threw ${String(e)}`);
          rejected++;
        }
      }
    }
    // Both outcomes must occur, or the mutations are not exercising the decoder.
    expect(decoded).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});
