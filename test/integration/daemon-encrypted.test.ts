/**
 * Encrypted upstreams through the running daemon (in-process, control socket): a real unbound
 * from Debian serving DNS over TLS and DNS over HTTPS with a certificate from the test CA
 * (`upstream_tls_ca`), forwarding `test.` to a knotd. A protected name is answered and
 * registered over DoT and over DoH; a server whose certificate is not issued for the configured
 * name is refused (status shows why) and the next server of the list answers; a reload moves
 * the daemon from DoT to DoH. Loopback only, no root needed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { haveOpenssl, makeCerts, type TestCerts } from '../proxy/tls-certs.ts';
import { answerLab, aRecords, type AnswerLab } from '../daemon/answer-lab.ts';
import { haveBinary, startKnot, type KnotServer } from './knot-server.ts';
import { startUnbound, unboundPath, type UnboundServer } from './unbound-server.ts';

const HAVE = unboundPath() !== null && haveBinary('knotd') && haveOpenssl();
if (!HAVE) console.log('integration/daemon-encrypted: skipped — needs unbound, knotd and openssl (apt: unbound knot openssl)');

const POLICY = 'channels:\n  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }\ntables:\n  default:\n    - { match: "*.corp.test", channel: hub }\n';

describe.skipIf(!HAVE)('integration/daemon-encrypted', () => {
  let certs: TestCerts;
  let knot: KnotServer;
  let unbound: UnboundServer;
  const labs: AnswerLab[] = [];
  const dot = (name = 'dns.test') => `"tls://127.0.0.1:${unbound.tlsPort}#${name}"`;
  const doh = (name = 'dns.test') => `"https://127.0.0.1:${unbound.httpsPort}/dns-query#${name}"`;
  const ca = () => `upstream_tls_ca: ${join(certs.dir, 'ca.crt')}\n`;
  const lab = async (text: string) => {
    const l = await answerLab(text);
    labs.push(l);
    return l;
  };
  const live = (l: AnswerLab) => l.d.info.registry.list().filter((e) => !e.retired).map((e) => e.addr);

  beforeAll(async () => {
    certs = makeCerts(['dns.test']);
    knot = await startKnot();
    unbound = await startUnbound({ certPath: certs.certPath, keyPath: certs.keyPath, forward: { address: knot.address, port: knot.port } });
  });
  afterAll(async () => {
    for (const l of labs) await l.stop();
    await unbound?.stop();
    await knot?.stop();
    certs?.cleanup();
  });

  test('answers and registers a protected name over DNS over TLS when the certificate is for the name', async () => {
    const l = await lab(`${ca()}upstreams:\n  default: [${dot()}]\n${POLICY}`);
    const a = await l.ask('www.corp.test');
    expect(a.rcode).toBe('NOERROR');
    expect(aRecords(a)).toEqual(['203.0.113.10']);
    expect(live(l)).toEqual(['203.0.113.10']);
    const s = await l.status();
    expect(s.upstreams[0]).toMatchObject({ transport: 'tls', server: `tls://127.0.0.1:${unbound.tlsPort}#dns.test`, health: 'up', answers: 1 });
    expect(typeof s.upstreams[0]!.latency_ms).toBe('number');
  });

  test('answers and registers a protected name over DNS over HTTPS', async () => {
    const l = await lab(`${ca()}upstreams:\n  default: [${doh()}]\n${POLICY}`);
    expect(aRecords(await l.ask('www.corp.test'))).toEqual(['203.0.113.10']);
    expect(live(l)).toEqual(['203.0.113.10']);
    expect((await l.status()).upstreams[0]).toMatchObject({ transport: 'https', health: 'up' });
  });

  test('refuses a DoT server whose certificate is for another name and answers from the next server', async () => {
    const l = await lab(`${ca()}upstreams:\n  default: [${dot('wrong.test')}, ${doh()}]\n${POLICY}`);
    expect(aRecords(await l.ask('www.corp.test'))).toEqual(['203.0.113.10']);
    const s = await l.status();
    expect(s.upstreams[0]).toMatchObject({ health: 'down', errno: 'ERR_TLS_CERT_ALTNAME_INVALID', failures: { tls: 1 } });
    expect(s.upstreams[1]).toMatchObject({ health: 'up', answers: 1 });
  });

  test('answers SERVFAIL, never clear DNS, when the only server\'s certificate is not trusted', async () => {
    // no upstream_tls_ca: the system store does not know the test CA
    const l = await lab(`upstreams:\n  default: [${dot()}]\n${POLICY}`);
    expect((await l.ask('www.corp.test')).rcode).toBe('SERVFAIL');
    expect(live(l)).toEqual([]);
    expect((await l.status()).upstreams[0]).toMatchObject({ health: 'down', failures: { tls: 1 } });
  });

  test('moves from DoT to DoH by a reload', async () => {
    const l = await lab(`${ca()}upstreams:\n  default: [${dot()}]\n${POLICY}`);
    expect(aRecords(await l.ask('www.corp.test'))).toEqual(['203.0.113.10']);
    l.write(`${ca()}upstreams:\n  default: [${doh()}]\n${POLICY}`);
    await l.reload();
    expect(aRecords(await l.ask('front.test'))).toEqual(['203.0.113.10']);
    const s = await l.status();
    expect(s.upstreams.map((u) => [u.transport, u.answers])).toEqual([['https', 1]]);
  });
});
