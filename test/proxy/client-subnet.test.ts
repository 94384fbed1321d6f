/**
 * Issue 11 item 8, client groups behind a resolver, end to end: dnsmasq forwarding to dnsseal
 * (`--add-subnet=32,128`) sends every query from 127.0.0.1 and names the client in EDNS Client
 * Subnet. From a trusted forwarder a /32 or /128 classifies the query (its table, its kernel
 * group); anything else — a shorter prefix, an untrusted sender — does not. The option never
 * reaches a plain upstream; a policy-server link names the classified client itself.
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { Policy } from '../../src/policy/policy.ts';
import type { PolicyServerLink } from '../../src/proxy/pipeline.ts';
import { clientQuery, withEdnsOptions } from '../fixtures/dns/capture.ts';
import { channels, config, table } from '../policy/fixtures.ts';
import type { FakeQuery } from './fake-upstream.ts';
import { proxyOn } from './proxy-fixture.ts';

const policy = Policy.fromConfig(
  config({
    channels: channels(['hub', { kind: 'tunnel', gateway: '192.0.2.1' }]),
    tables: [table('default', [['*.corp.example', 'hub']]), table('lan-a', [['*.corp.example', 'hub']])],
    clients: [{ cidr: '192.168.1.0/24', table: 'lan-a' }],
  }),
);
const LAN_A = policy.tableFor('192.168.1.7').group;
const ecs = (prefix: number, addr: number[]) => [0, 1, prefix, 0, ...addr.slice(0, Math.ceil(prefix / 8))];
const asked = (ecsData?: number[]) => (ecsData ? withEdnsOptions(clientQuery('www.corp.example', 1), [[8, ecsData]]) : clientQuery('www.corp.example', 1));

/** EDNS option codes of a query the fake upstream received. */
function optionCodes(q: FakeQuery): number[] {
  const d = dnsPacket.decode(Buffer.from(q.bytes));
  const opt = d.additionals?.find((a) => a.type === 'OPT') as { options?: Array<{ code: number }> } | undefined;
  return (opt?.options ?? []).map((o) => o.code);
}

describe('proxy/client-subnet', () => {
  test('registers under the group of the client a trusted forwarder names when it sends a /32', async () => {
    expect(LAN_A).not.toBe(0);
    const { ask, registry, fake, counters } = await proxyOn((q, t) => t.answerFor(q), policy, { trustedForwarders: ['127.0.0.1/32', '::1'] });
    await ask(asked(ecs(32, [192, 168, 1, 7])));
    expect(registry.registrations.map((r) => r.group)).toEqual([LAN_A]);
    expect(counters.clientSubnet.used).toBe(1);
    // privacy: the client's address does not go upstream
    expect(fake.queries.map(optionCodes)).toEqual([[]]);
  });

  test.each([
    ['a sender that is not a trusted forwarder names a client', '127.0.0.2', ecs(32, [192, 168, 1, 7])],
    ['a trusted forwarder names a network, not a client', '127.0.0.1', ecs(24, [192, 168, 1, 0])],
    ['a trusted forwarder names nobody', '127.0.0.1', undefined],
  ])('keeps the sender\'s own group when %s', async (_what, from, data) => {
    const { ask, registry, fake } = await proxyOn((q, t) => t.answerFor(q), policy, { trustedForwarders: ['127.0.0.1/32'] });
    await ask(asked(data), from);
    expect(registry.registrations.map((r) => r.group)).toEqual([0]);
    expect(fake.queries.map(optionCodes)).toEqual([[]]);
  });

  test('ignores every client subnet when no forwarder is trusted', async () => {
    const { ask, registry } = await proxyOn((q, t) => t.answerFor(q), policy);
    await ask(asked(ecs(32, [192, 168, 1, 7])));
    expect(registry.registrations.map((r) => r.group)).toEqual([0]);
  });

  test('names the classified client to a policy-server link, not the forwarder, when a trusted forwarder sends a /32', async () => {
    const named: string[] = [];
    const link: PolicyServerLink = {
      upstream: 'default',
      hooks: (clientIp) => {
        named.push(clientIp);
        return { sign: (wire) => wire, accept: () => true };
      },
      decisionOf: () => null,
    };
    const { ask } = await proxyOn((q, t) => t.answerFor(q), policy, { trustedForwarders: ['127.0.0.1/32'], policyServer: link });
    await ask(asked(ecs(32, [192, 168, 1, 7])));
    expect(named).toEqual(['192.168.1.7']);
  });
});
