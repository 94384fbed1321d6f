/**
 * Issue 11 item 9, the split-DNS CNAME hole, end to end: an internal upstream answers
 * `app.corp.example CNAME app.cloudhost.example.` without an address; the client's stub then
 * asks for `app.cloudhost.example` on its own (another upstream answers it). That answer is
 * protected under the same channel and client group while the CNAME's TTL (at least
 * min_hold) runs, and only for that group.
 */
import { describe, expect, test } from 'bun:test';
import type dnsPacket from 'dns-packet';
import { Policy } from '../../src/policy/policy.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { channels, config, table } from '../policy/fixtures.ts';
import type { Script } from './fake-upstream.ts';
import { addressesIn, proxyOn } from './proxy-fixture.ts';

const rr = (name: string, type: string, data: string, ttl: number) => ({ name, type, ttl, class: 'IN', data }) as dnsPacket.Answer;

/** The internal server: the CNAME into the cloud, no address (it does not chase it). */
const corp: Script = (q, t) => t.answerFor(q, { answers: [rr(q.name, 'CNAME', 'app.cloudhost.example', 120)] });
/** The public resolver: the cloud name's address. */
const pub: Script = (q, t) => t.answerFor(q, { answers: [rr(q.name, 'A', '198.51.100.20', 30)] });

const policy = Policy.fromConfig(
  config({
    upstreams: [
      { name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: 53 }] },
      { name: 'corp', servers: [{ transport: 'dns', address: '127.0.0.1', port: 53 }] },
    ],
    channels: channels(['hub', { kind: 'tunnel', gateway: '192.0.2.1' }]),
    tables: [table('default', [['*.corp.example', 'hub', 'corp']]), table('lab', [['*.lab.example', 'hub']])],
    clients: [{ cidr: '127.0.0.2/32', table: 'lab' }],
  }),
);
const LAB = policy.tableFor('127.0.0.2').group;

describe('proxy/cname-hold', () => {
  test('protects the CNAME target for the same group and channel until the hold ends when the stub asks for it alone', async () => {
    const clock = new FakeClock();
    const { ask, registry, fake, others } = await proxyOn(pub, policy, { clock, cnameHold: { minHoldS: 60 } }, { corp });
    const first = await ask(clientQuery('app.corp.example', 1));
    expect(first.answers!.map((a) => [a.type, (a as { data: string }).data])).toEqual([['CNAME', 'app.cloudhost.example']]);
    expect(others.corp!.queries.map((q) => q.name)).toEqual(['app.corp.example']);
    expect(registry.registrations).toEqual([]); // nothing to register yet: no address

    // the stub asks for the target itself; the public upstream answers
    const second = await ask(clientQuery('app.cloudhost.example', 1));
    expect(addressesIn(second)).toEqual(['198.51.100.20']);
    expect(fake.queries.map((q) => q.name)).toEqual(['app.cloudhost.example']);
    expect(registry.registrations).toHaveLength(1);
    expect(registry.registrations[0]).toMatchObject({ group: 0, channel: { name: 'hub' }, names: ['app.cloudhost.example'], addrs: ['198.51.100.20'] });

    // another client group is not affected
    expect(LAB).not.toBe(0);
    await ask(clientQuery('app.cloudhost.example', 1), '127.0.0.2');
    expect(registry.registrations).toHaveLength(1);

    // the CNAME's TTL (120 s > min_hold) still runs: protected; after it: no longer
    clock.advance(119_000);
    await ask(clientQuery('app.cloudhost.example', 1));
    expect(registry.registrations).toHaveLength(2);
    clock.advance(1_000);
    const late = await ask(clientQuery('app.cloudhost.example', 1));
    expect(addressesIn(late)).toEqual(['198.51.100.20']);
    expect(registry.registrations).toHaveLength(2);
  });
});
