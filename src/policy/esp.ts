/**
 * ESP proposal check: AEAD only. Accepts strongSwan proposal syntax — algorithms joined by
 * "-", several proposals joined by "," — e.g. `aes256gcm16`, `aes128gcm16-prfsha256-ecp256`,
 * `chacha20poly1305-x25519`. Returns null when acceptable, otherwise why not and what to use.
 */

const AEAD = [
  /^aes(128|192|256)gcm(8|12|16|64|96|128)?$/,
  /^aes(128|192|256)ccm(8|12|16|64|96|128)?$/,
  /^chacha20poly1305$/,
];
const PRF = /^prf(sha256|sha384|sha512)$/;
const DH_OK = /^(modp(2048|3072|4096|6144|8192)|ecp(224|256|384|521)(bp)?|ecp(224|256|384|512)bp|x25519|x448|curve25519|curve448|mlkem(512|768|1024))$/;
const DH_WEAK = /^modp(768|1024|1024s160|1536|2048s224|2048s256)$/;
const OTHER_OK = /^(esn|noesn)$/;

export const SUGGEST = 'use an AEAD proposal such as aes256gcm16, aes128gcm16 or chacha20poly1305';

function refuse(tok: string): string | null {
  if (/^(des|desiv64|desiv32)$/.test(tok)) return `"${tok}" (single DES) has a 56-bit key and is broken`;
  if (/^(3des|des3|tripledes)$/.test(tok)) return `"${tok}" (3DES) is a 64-bit block cipher open to Sweet32 and is not AEAD`;
  if (/^null$/.test(tok)) return `"${tok}" means no encryption at all`;
  if (/cbc|^aes(128|192|256)?$|^(blowfish|cast128|camellia|serpent|twofish|idea|rc5)/.test(tok)) {
    return `"${tok}" is a CBC-mode cipher without built-in integrity (not AEAD)`;
  }
  if (/ctr$/.test(tok)) return `"${tok}" is a counter-mode cipher without built-in integrity (not AEAD)`;
  if (/^(md5|sha1|sha|sha2_|sha256|sha384|sha512|aesxcbc|aescmac|aes(128|192|256)gmac|hmac)/.test(tok)) {
    return `"${tok}" is a separate integrity algorithm; AEAD ciphers carry their own integrity, so it does not belong here (and is refused so that no non-AEAD proposal slips in)`;
  }
  return null;
}

/** null = acceptable; otherwise a sentence saying what is wrong and what to use instead. */
export function checkEsp(proposals: string): string | null {
  if (typeof proposals !== 'string' || proposals.trim() === '') return `the ESP proposal is empty; ${SUGGEST}`;
  for (const raw of proposals.split(',')) {
    const proposal = raw.trim().toLowerCase();
    if (proposal === '') return `empty proposal in "${proposals}"; ${SUGGEST}`;
    let aead = 0;
    for (const tok of proposal.split('-')) {
      if (AEAD.some((re) => re.test(tok))) {
        aead++;
        continue;
      }
      if (PRF.test(tok) || DH_OK.test(tok) || OTHER_OK.test(tok)) continue;
      if (DH_WEAK.test(tok)) return `"${tok}" is a Diffie-Hellman group too weak to use; choose x25519, ecp256 or modp3072`;
      const why = refuse(tok);
      if (why) return `${why}; ${SUGGEST}`;
      return `"${tok}" is not an algorithm dnsseal accepts in an ESP proposal; ${SUGGEST}`;
    }
    if (aead === 0) return `proposal "${proposal}" names no AEAD cipher; ${SUGGEST}`;
  }
  return null;
}
