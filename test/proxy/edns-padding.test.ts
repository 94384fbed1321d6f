import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { parseQuery } from '../../src/dns/query.ts';
import { buildUpstreamQuery } from '../../src/dns/response.ts';
import { padQuery } from '../../src/proxy/edns-padding.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';

function built(name: string): Uint8Array {
  const r = parseQuery(clientQuery(name, 1));
  if (r.kind !== 'ok') throw new Error('bad query');
  return buildUpstreamQuery(0x1234, r.query, 65535);
}

describe('proxy/edns-padding', () => {
  test.each(['a.test', 'www.example.com', 'x'.repeat(63) + '.' + 'y'.repeat(60) + '.test'])('pads the query for %s to a multiple of 128 octets', (name) => {
    const wire = built(name);
    const padded = padQuery(wire);
    expect(padded.length % 128).toBe(0);
    const d = dnsPacket.decode(Buffer.from(padded));
    expect(d.questions?.[0]?.name).toBe(name);
    const opt = d.additionals?.[0] as unknown as { type: string; udpPayloadSize: number; options: Array<{ code: number; length?: number }> };
    expect(opt.type).toBe('OPT');
    expect(opt.udpPayloadSize).toBe(65535);
    expect(opt.options.map((o) => o.code)).toEqual([12]);
    // Everything before the OPT's RDLENGTH is unchanged.
    expect([...padded.subarray(0, wire.length - 2)]).toEqual([...wire.subarray(0, wire.length - 2)]);
  });

  test('writes the golden bytes for a short query', () => {
    const padded = padQuery(built('a.test'));
    // 12 header + 12 question + 11 OPT = 35; the option takes 4 + 89 to reach 128:
    // OPT RDLENGTH 93, then option code 12, length 89, zeros.
    expect(padded.length).toBe(128);
    expect([...padded.subarray(33, 39)]).toEqual([0, 93, 0, 12, 0, 89]);
    expect(padded.subarray(39).every((b) => b === 0)).toBe(true);
  });

  test('returns the bytes unchanged when the last record is not an empty OPT', () => {
    const noOpt = new Uint8Array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 0, 0, 1, 0, 1]);
    expect(padQuery(noOpt)).toBe(noOpt);
    const once = padQuery(built('a.test'));
    expect(padQuery(once)).toBe(once);
  });
});
