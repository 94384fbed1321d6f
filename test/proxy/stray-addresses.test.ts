/**
 * Issue 11 item 10: a protected answer reaches the client with only the addresses that were
 * registered. A/AAAA records off the query's CNAME chain, or in the authority or additional
 * section, are removed (host and gateway modes; intercept mode rewrites on its own); an
 * unprotected answer is relayed as the upstream sent it.
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { SuffixPolicy } from './doubles.ts';
import type { FakeQuery, FakeUpstreamTools } from './fake-upstream.ts';
import { addressesIn, proxyOn } from './proxy-fixture.ts';

const rr = (name: string, type: string, data: string, ttl = 300) => ({ name, type, ttl, class: 'IN', data }) as dnsPacket.Answer;

/** The upstream adds an off-chain A, an off-chain AAAA and glue to every answer. */
function withStrays(q: FakeQuery, t: FakeUpstreamTools): Uint8Array {
  const base = t.answerFor(q, { answers: [rr(q.name, 'CNAME', `edge.${q.name}`), rr(`edge.${q.name}`, 'A', '192.0.2.10'), rr('evil.example', 'A', '203.0.113.66'), rr('evil.example', 'AAAA', '2001:db8::66')] });
  // glue in the additional section, as an authoritative server would add it
  const d = dnsPacket.decode(Buffer.from(base));
  return new Uint8Array(dnsPacket.encode({ ...d, additionals: [rr('ns.example', 'A', '198.51.100.53')] }));
}

describe('proxy/stray-addresses', () => {
  test('removes addresses off the chain and outside the answer section when the answer is protected', async () => {
    const { ask, registry, counters } = await proxyOn(withStrays, new SuffixPolicy(['corp.test']));
    const out = await ask(clientQuery('www.corp.test', 1));
    expect(out.rcode).toBe('NOERROR');
    expect(addressesIn(out)).toEqual(['192.0.2.10']);
    expect(out.answers!.map((a) => a.type)).toEqual(['CNAME', 'A']);
    // what the client got is exactly what was registered
    expect(registry.registrations.map((r) => r.addrs)).toEqual([addressesIn(out)]);
    expect(counters.strayRecordsRemoved).toBe(3);
  });

  test('relays every record unchanged when the answer is not protected', async () => {
    const { ask, registry } = await proxyOn(withStrays, new SuffixPolicy(['corp.test']));
    const out = await ask(clientQuery('www.public.test', 1));
    expect(addressesIn(out).sort()).toEqual(['192.0.2.10', '198.51.100.53', '2001:db8::66', '203.0.113.66']);
    expect(registry.registrations).toEqual([]);
  });

  test('removes a stray address when the protected chain itself has none', async () => {
    const { ask, registry } = await proxyOn(
      (q, t) => t.answerFor(q, { answers: [rr(q.name, 'CNAME', 'app.cloud.example'), rr('other.example', 'A', '203.0.113.67')] }),
      new SuffixPolicy(['corp.test']),
    );
    const out = await ask(clientQuery('app.corp.test', 1));
    expect(out.rcode).toBe('NOERROR');
    expect(addressesIn(out)).toEqual([]);
    expect(out.answers!.map((a) => [a.type, (a as { data: string }).data])).toEqual([['CNAME', 'app.cloud.example']]);
    expect(registry.registrations).toEqual([]);
  });
});
