/**
 * Bun's TLS options for both sides, in one place: TLS 1.3 only (the TLS 1.0-1.2 switches off,
 * so there is no fallback to negotiate), mutual authentication, our ALPN id. TLS 1.3 suites are
 * all AEAD (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; BoringSSL does not let them be
 * changed), so no cipher list is needed. `sessionProblem` re-checks the result after every
 * handshake: a session that is not TLS 1.3 with our ALPN is refused even if a later Bun were to
 * ignore an option.
 */
import type { Socket, TLSOptions } from 'bun';
import { ALPN_ID, type HandshakeFailure, type TlsCredentials } from './types.ts';

/** OpenSSL/BoringSSL SSL_OP_NO_TLSv1, _TLSv1_1, _TLSv1_2. */
export const SSL_OP_NO_TLSV1 = 0x04000000;
export const SSL_OP_NO_TLSV1_1 = 0x10000000;
export const SSL_OP_NO_TLSV1_2 = 0x08000000;
export const TLS13_ONLY = SSL_OP_NO_TLSV1 | SSL_OP_NO_TLSV1_1 | SSL_OP_NO_TLSV1_2;

/** ALPN in wire form (length-prefixed); Bun ignores the plain-string form. */
const ALPN_WIRE = new Uint8Array([ALPN_ID.length, ...new TextEncoder().encode(ALPN_ID)]);

/** The connecting side: our certificate, the CA for the server's, SNI = the expected identity. */
export function clientTls(creds: TlsCredentials, serverName: string): TLSOptions {
  return {
    cert: creds.certPem,
    key: creds.keyPem,
    ca: creds.caPem,
    serverName,
    rejectUnauthorized: true,
    secureOptions: TLS13_ONLY,
    ALPNProtocols: ALPN_WIRE,
  };
}

/** The accepting side: a client certificate is required and must chain to the CA. */
export function serverTls(creds: TlsCredentials): TLSOptions {
  return {
    cert: creds.certPem,
    key: creds.keyPem,
    ca: creds.caPem,
    requestCert: true,
    rejectUnauthorized: true,
    secureOptions: TLS13_ONLY,
    ALPNProtocols: ALPN_WIRE,
  };
}

/**
 * What is wrong with a finished handshake, or null. `success`/`error` are what Bun's
 * `handshake` callback got; `authorized` is re-read from the socket because Bun reports
 * success for a server whose client certificate did not verify (it closes it itself later).
 */
export function sessionProblem(sock: Socket<unknown>, success: boolean, error: Error | null): HandshakeFailure | null {
  const code = (error as { code?: string } | null)?.code ?? '';
  const msg = error?.message ?? '';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(msg)) return 'no_certificate';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'identity';
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION|HTTP_REQUEST|PARSE_TLSEXT|UNEXPECTED_RECORD|BAD_PACKET|DECODE_ERROR|RECORD/i.test(msg)) return 'protocol';
  if (/disconnected|socket hang up|ECONNRESET/i.test(msg)) return 'closed';
  if (!success || error || !sock.authorized) return 'untrusted';
  if (sock.getTLSVersion() !== 'TLSv1.3') return 'protocol';
  if (sock.alpnProtocol !== ALPN_ID) return 'protocol';
  return null;
}
