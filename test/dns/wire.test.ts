import { describe, expect, test } from 'bun:test';
import { readName, readRecordHead, skipName, u16, u32, WireError } from '../../src/dns/wire.ts';
import { hex } from './fixtures.ts';

// 12 bytes of header padding, then names; offsets below count from the start.
const HDR = '000000000000000000000000';

describe('dns/wire', () => {
  test.each([
    ['plain name', HDR + '03777777047465737400', 12, 'www.test', 22],
    ['root', HDR + '00', 12, '', 13],
    ['upper case is folded', HDR + '03575757045445535400', 12, 'www.test', 22],
    ['escaped dot and backslash in a label', HDR + '03612e5c00', 12, 'a\\046\\092', 17],
    ['space and DEL escaped', HDR + '02207f00', 12, '\\032\\127', 16],
  ])('reads %s when uncompressed', (_what, h, off, name, end) => {
    expect(readName(hex(h), off)).toEqual({ name, end });
  });

  test('follows a backward pointer and ends after the pointer when compressed', () => {
    // 12: www.test  22: mail + ptr(16 → "test")
    const b = hex(HDR + '03777777047465737400' + '046d61696cc010');
    expect(readName(b, 22)).toEqual({ name: 'mail.test', end: 29 });
  });

  test.each([
    ['a pointer to itself', HDR + 'c00c'],
    ['a forward pointer', HDR + 'c00e0161' + '00'],
    ['a two-pointer loop', HDR + '0161c010' + 'c00c'],
    ['a label past the end', HDR + '05616263'],
    ['a missing terminator', HDR + '03616263'],
    ['a truncated pointer', HDR + 'c0'],
    ['a reserved label type', HDR + '4161'],
    ['an 0x80 label type', HDR + '8161'],
  ])('rejects %s', (_what, h) => {
    expect(() => readName(hex(h), 12)).toThrow(WireError);
  });

  test('rejects a name longer than 255 octets when labels add up', () => {
    const label = '3f' + '61'.repeat(63);
    expect(() => readName(hex(HDR + label.repeat(4) + '00'), 12)).toThrow(WireError);
    // 3 × 64 + 1 + 61 + 1 = 255: the longest legal name
    const ok = label.repeat(3) + '3d' + '61'.repeat(61) + '00';
    expect(readName(hex(HDR + ok), 12).name.length).toBe(63 * 3 + 61 + 3);
  });

  test('skipName stops at the pointer without following it', () => {
    expect(skipName(hex(HDR + '0161c0ff'), 12)).toBe(16);
    expect(() => skipName(hex(HDR + '0161'), 12)).toThrow(WireError);
  });

  test('readRecordHead reads type, class, ttl and rdata bounds when complete', () => {
    const rr = hex(HDR + '00' + '0001' + '0001' + '0000012c' + '0004' + 'c0000201');
    expect(readRecordHead(rr, 12)).toEqual({ nameOff: 12, type: 1, klass: 1, ttl: 300, rdOff: 23, rdLen: 4, end: 27 });
  });

  test.each([
    ['rdata past the end', HDR + '00000100010000012c0005c0000201'],
    ['a header cut short', HDR + '0000010001'],
  ])('readRecordHead rejects %s', (_w, h) => {
    expect(() => readRecordHead(hex(h), 12)).toThrow(WireError);
  });

  test('u16 and u32 check bounds when reading at the end', () => {
    expect(u16(hex('0102'), 0)).toBe(0x0102);
    expect(u32(hex('ffffffff'), 0)).toBe(0xffffffff);
    expect(() => u16(hex('01'), 0)).toThrow(WireError);
    expect(() => u32(hex('010203'), 0)).toThrow(WireError);
  });
});
