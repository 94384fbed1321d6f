/**
 * The certificate checks every encrypted upstream shares (DoT, DoH): a server whose certificate
 * names another host, or comes from an issuer we do not trust, is refused before a query leaves.
 */
import { expect, test } from 'bun:test';
import { UpstreamError, type Upstream } from '../../src/proxy/upstream.ts';
import { q } from './upstream-contract.ts';
import type { TestCerts } from './tls-certs.ts';

export interface RefusalSetup {
  /** An upstream that expects `serverName` (default dns.test) of a server presenting `serverCert` (default: dns.test from the test CA). */
  (o: { serverName?: string; serverCert?: { key: string; cert: string } }): Promise<{ up: Upstream; queries: () => number }>;
}

export function certificateRefusalCases(certs: () => TestCerts, setup: RefusalSetup): void {
  test('refuses a certificate issued for another name and sends nothing', async () => {
    const { up, queries } = await setup({ serverName: 'other.test' });
    const err = (await up.exchange(q('secret-name.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe('tls');
    expect(err.errno).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(err.message).toContain('certificate refused');
    expect(queries()).toBe(0);
  });

  test('refuses a certificate from an untrusted issuer and sends nothing', async () => {
    const { rogueKey, rogueCert } = certs();
    const { up, queries } = await setup({ serverCert: { key: rogueKey, cert: rogueCert } });
    const err = (await up.exchange(q('secret-name.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('tls');
    expect(err.errno).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
    expect(queries()).toBe(0);
  });
}
