import { describe, expect, test } from 'bun:test';
import { checkEsp } from '../../src/policy/esp.ts';

describe('policy/esp', () => {
  test.each([
    'aes256gcm16', 'aes128gcm16', 'aes128gcm12', 'aes128gcm8', 'aes256gcm', 'aes128ccm16', 'chacha20poly1305',
    'aes256gcm16-prfsha256', 'aes256gcm16-prfsha384-ecp384', 'aes128gcm16-modp3072', 'chacha20poly1305-x25519',
    'aes256gcm16-ecp256-esn', 'AES256GCM16', 'aes256gcm16,chacha20poly1305',
  ])('accepts %p when it is AEAD', (p) => {
    expect(checkEsp(p)).toBeNull();
  });

  test.each([
    ['3des', /3DES.*Sweet32.*aes256gcm16/],
    ['3des-sha1', /3DES/],
    ['des', /56-bit/],
    ['aes128', /CBC/],
    ['aes256cbc-sha256', /CBC/],
    ['aes128ctr-sha256', /counter-mode/],
    ['aes256gcm16-sha256', /integrity/],
    ['null', /no encryption/],
    ['aes256gcm16-modp1024', /too weak/],
    ['prfsha256-ecp256', /no AEAD/],
    ['rot13', /not an algorithm/],
    ['', /empty/],
    ['aes256gcm16,', /empty proposal/],
  ])('refuses %p with a reason when it is not acceptable', (p, why) => {
    expect(checkEsp(p)).toMatch(why);
  });
});
