import { afterAll, describe, expect, test } from 'bun:test';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { parseServerSpec } from '../../src/proxy/server-spec.ts';
import { openUpstreamSets } from '../../src/proxy/upstream-factory.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';
import { startFakeDoh, startFakeDot } from './fake-encrypted.ts';
import { FakeUpstream, type Script } from './fake-upstream.ts';
import { haveOpenssl, makeCerts } from './tls-certs.ts';
import { q } from './upstream-contract.ts';

const HAVE = haveOpenssl();
if (!HAVE) console.log('proxy/upstream-factory: skipped — needs openssl (apt: openssl)');

describe.skipIf(!HAVE)('proxy/upstream-factory', () => {
  const certs = HAVE ? makeCerts(['dns.test']) : null;
  afterAll(() => certs?.cleanup());
  const deps = () => ({ timeoutMs: 2000, clock: realClock, log: silentLogger, counters: newProxyCounters(), tlsCa: certs!.ca, udpPoolSize: 1 });

  test('builds one set per name from mixed plain, tls and https servers and fails over across them', async () => {
    const closed = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const deadPort = closed.port;
    closed.close();
    const answer: Script = (query, t) => t.answerFor(query);
    const dot = await startFakeDot({ key: certs!.key, cert: certs!.cert, script: answer });
    const doh = await startFakeDoh({ key: certs!.key, cert: certs!.cert, script: answer });
    const lan = await FakeUpstream.start(answer);
    const lines: string[] = [];
    const sets = await openUpstreamSets(
      [
        { name: 'default', servers: [`127.0.0.1:${deadPort}`, `tls://127.0.0.1:${dot.port}#dns.test`].map(parseServerSpec) },
        { name: 'doh', servers: [parseServerSpec(`https://127.0.0.1:${doh.port}/dns-query#dns.test`)] },
        { name: 'lan', servers: [parseServerSpec(`127.0.0.1:${lan.port}`)] },
      ],
      { ...deps(), log: createLogger({ level: 'info', write: (l) => lines.push(l) }) },
    );
    try {
      const a = await sets.get('default')!.exchange(q('www.test'));
      expect(a).toMatchObject({ server: 1, via: 'tls' });
      expect((await sets.get('doh')!.exchange(q('www.test'))).via).toBe('https');
      expect((await sets.get('lan')!.exchange(q('router.lan'))).via).toBe('udp');
      expect(dot.queries).toHaveLength(1);
      expect(lines.find((l) => l.includes('upstream: servers') && l.includes('upstream=default'))).toContain(`tls://127.0.0.1:${dot.port}#dns.test`);
      expect(lines.some((l) => l.includes('level=warn') && l.includes('errno=ECONNREFUSED'))).toBe(true);
    } finally {
      for (const s of sets.values()) s.close();
      await dot.stop();
      await doh.stop();
      lan.stop();
    }
  });

  test('closes what it opened and rethrows when one server cannot be used', async () => {
    const err = await openUpstreamSets(
      [
        { name: 'default', servers: [parseServerSpec('127.0.0.1:53')] },
        { name: 'doh', servers: [parseServerSpec('https://127.0.0.1/dns-query#dns.test')] },
      ],
      { ...deps(), source: '127.0.0.1' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as DnssealError).code).toBe('upstream_source');
  });
});
