import { describe, expect, test } from 'bun:test';
import * as dnsPacket from 'dns-packet';
import {
  POLICY_OPTION_CODE,
  decodePolicyOption,
  decodePolicyOptionData,
  ednsOptions,
  encodePolicyOption,
  setPolicyOption,
  type PolicyAnnotation,
} from '../../src/dns/policy-option.ts';

const ascii = (s: string) => [...Buffer.from(s, 'ascii')];
const str8 = (s: string) => [s.length, ...ascii(s)];

const TUNNEL: PolicyAnnotation = {
  version: 1,
  node: 'host',
  table: '502',
  group: 502,
  channel: { name: 'hub', kind: 'tunnel', identity: 'hub.nec.example', esp: 'aes256gcm16', gateway: '192.0.2.1' },
};
const PEER: PolicyAnnotation = {
  version: 1,
  node: 'gateway',
  table: '503',
  group: 503,
  channel: { name: 'partner', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' },
};
const NONE: PolicyAnnotation = { version: 1, node: 'host', table: 'default', group: 0, channel: null };

// Written out by hand from the layout in src/dns/policy-option.ts, not from the encoder.
const GOLDEN: Array<[string, PolicyAnnotation, number[]]> = [
  ['tunnel', TUNNEL, [0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0xf6, ...str8('502'), ...str8('hub'), ...str8('hub.nec.example'), ...str8('aes256gcm16'), ...str8('192.0.2.1')]],
  ['peer', PEER, [0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x01, 0xf7, ...str8('503'), ...str8('partner'), ...str8('%name'), ...str8('chacha20poly1305')]],
  ['none', NONE, [0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, ...str8('default')]],
];

function query(withOpt: boolean, extraOptions: Array<{ code: number; data: Buffer }> = []): Uint8Array {
  return new Uint8Array(
    dnsPacket.encode({
      type: 'response',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'kojima.jinji.nec.com' }],
      answers: [{ type: 'A', name: 'kojima.jinji.nec.com', ttl: 60, data: '198.51.100.7' }],
      additionals: withOpt ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: extraOptions } as unknown as dnsPacket.Answer] : [],
    }),
  );
}

describe('dns/policy-option', () => {
  test('uses a code point from the local/experimental range when encoding', () => {
    expect(POLICY_OPTION_CODE).toBeGreaterThanOrEqual(65001);
    expect(POLICY_OPTION_CODE).toBeLessThanOrEqual(65534);
  });

  test.each(GOLDEN)('encodes the golden bytes when the channel is %s', (_n, ann, bytes) => {
    expect([...encodePolicyOption(ann)]).toEqual(bytes);
  });

  test.each(GOLDEN)('decodes the golden bytes when the channel is %s', (_n, ann, bytes) => {
    expect(decodePolicyOptionData(Uint8Array.from(bytes))).toEqual(ann);
  });

  test.each(GOLDEN)('refuses every truncation when the channel is %s', (_n, _ann, bytes) => {
    for (let n = 0; n < bytes.length; n++) expect(() => decodePolicyOptionData(Uint8Array.from(bytes.slice(0, n)))).toThrow(/policy-option:/);
  });

  const tunnelBytes = GOLDEN[0]![2];
  test.each<[string, number[]]>([
    ['version 2', [0x02, ...tunnelBytes.slice(1)]],
    ['version 0', [0x00, ...tunnelBytes.slice(1)]],
    ['node kind 0', [0x01, 0x00, ...tunnelBytes.slice(2)]],
    ['node kind 3', [0x01, 0x03, ...tunnelBytes.slice(2)]],
    ['channel kind 3', [0x01, 0x01, 0x03, ...tunnelBytes.slice(3)]],
    ['reserved flags set', [0x01, 0x01, 0x01, 0x80, ...tunnelBytes.slice(4)]],
    ['a trailing octet', [...tunnelBytes, 0x00]],
    ['an empty table id', [0x01, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0x00]],
    ['a non-printable identity', [0x01, 0x01, 0x02, 0x00, 0, 0, 0, 0, ...str8('t'), ...str8('c'), 0x02, 0x41, 0x0a, ...str8('x')]],
    ['a non-ASCII identity', [0x01, 0x01, 0x02, 0x00, 0, 0, 0, 0, ...str8('t'), ...str8('c'), 0x02, 0xc3, 0xa9, ...str8('x')]],
    ['a length past the end', [0x01, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0x05, 0x41]],
  ])('refuses data with %s when decoding', (_n, bytes) => {
    expect(() => decodePolicyOptionData(Uint8Array.from(bytes))).toThrow(/policy-option:/);
  });

  test.each<[string, PolicyAnnotation]>([
    ['a peer channel with a gateway', { ...PEER, channel: { ...PEER.channel!, gateway: '192.0.2.1' } }],
    ['a tunnel channel without a gateway', { ...TUNNEL, channel: { ...TUNNEL.channel!, gateway: undefined } }],
    ['an identity of 256 characters', { ...PEER, channel: { ...PEER.channel!, identity: 'a'.repeat(256) } }],
    ['a space in the esp proposal', { ...PEER, channel: { ...PEER.channel!, esp: 'aes 256' } }],
    ['a negative group', { ...NONE, group: -1 }],
  ])('refuses %s when encoding', (_n, ann) => {
    expect(() => encodePolicyOption(ann)).toThrow(/policy-option:/);
  });

  test('throws only DnssealError and round-trips what it accepts when decoding 20000 random mutations', () => {
    let seed = 11;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const base = GOLDEN[i % GOLDEN.length]![2].slice();
      for (let e = 0; e < 1 + Math.floor(rand() * 3); e++) base[Math.floor(rand() * base.length)] = Math.floor(rand() * 256);
      let decoded: PolicyAnnotation;
      try {
        decoded = decodePolicyOptionData(Uint8Array.from(base));
      } catch (err) {
        expect((err as Error).message.startsWith('policy-option: ')).toBe(true);
        continue;
      }
      accepted++;
      expect([...encodePolicyOption(decoded)]).toEqual(base);
    }
    expect(accepted).toBeGreaterThan(0);
  });

  test('places the option in the OPT and keeps other options when the answer has an OPT', () => {
    const cookie = { code: 10, data: Buffer.from('0102030405060708', 'hex') };
    const { wire, added } = setPolicyOption(query(true, [cookie]), TUNNEL);
    expect(added).toBe(true);
    expect(decodePolicyOption(wire)).toEqual(TUNNEL);
    const opts = ednsOptions(wire);
    expect(opts.map((o) => o.code)).toEqual([10, POLICY_OPTION_CODE]);
    // dns-packet (an unaware client) still reads the answer.
    const decoded = dnsPacket.decode(Buffer.from(wire));
    expect(decoded.answers?.[0]).toMatchObject({ type: 'A', data: '198.51.100.7' });
  });

  test('replaces an upstream-supplied policy option when the server annotates', () => {
    const forged = { code: POLICY_OPTION_CODE, data: Buffer.from(encodePolicyOption(TUNNEL)) };
    const { wire } = setPolicyOption(query(true, [forged]), NONE);
    expect(decodePolicyOption(wire)).toEqual(NONE);
    expect(ednsOptions(wire).filter((o) => o.code === POLICY_OPTION_CODE).length).toBe(1);
  });

  test('strips an upstream-supplied policy option when the annotation is null', () => {
    const forged = { code: POLICY_OPTION_CODE, data: Buffer.from(encodePolicyOption(TUNNEL)) };
    const { wire, added } = setPolicyOption(query(true, [forged]), null);
    expect(added).toBe(false);
    expect(decodePolicyOption(wire)).toBeNull();
  });

  test('adds nothing when the answer has no OPT', () => {
    const msg = query(false);
    const { wire, added } = setPolicyOption(msg, TUNNEL);
    expect(added).toBe(false);
    expect(wire).toEqual(msg);
    expect(decodePolicyOption(wire)).toBeNull();
  });

  test('refuses a message with two policy options when decoding', () => {
    const o = { code: POLICY_OPTION_CODE, data: Buffer.from(encodePolicyOption(NONE)) };
    expect(() => decodePolicyOption(query(true, [o, o]))).toThrow(/2 policy options/);
  });

  test('refuses to place the option when a record follows the OPT', () => {
    const msg = new Uint8Array(
      dnsPacket.encode({
        type: 'response',
        id: 1,
        questions: [{ type: 'A', name: 'a.example' }],
        additionals: [
          { type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer,
          { type: 'A', name: 'ns.a.example', ttl: 1, data: '192.0.2.1' },
        ],
      }),
    );
    expect(() => setPolicyOption(msg, NONE)).toThrow(/OPT is not the last record/);
  });
});
