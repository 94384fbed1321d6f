/**
 * The registry keys an entry by address text, and three roads lead to that text: a DNS answer
 * (bytes off the wire), the config's `static:` list (text an operator wrote) and the control
 * filters of `list` / `flush --address` (text an operator typed). They must produce the same
 * key for one address however it is spelled, or a static entry and an answer would hold one
 * address twice and `list --address` would miss what is in the map. All three go through
 * src/util/ip.ts; this test drives the real code of each road into one registry.
 */
import { describe, expect, test } from 'bun:test';
import * as dnsPacket from 'dns-packet';
import { loadConfigText } from '../../src/config/load.ts';
import { createControlHandlers } from '../../src/control/handlers.ts';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import { parseQuery } from '../../src/dns/query.ts';
import { Policy } from '../../src/policy/policy.ts';
import { deps } from '../config/fixtures.ts';
import { addrsIn, rig } from './helpers.ts';

const NAME = 'www.corp.example';

/** [the canonical key, as a DNS answer carries it, as the config writes it, as a control filter types it]. */
const ADDRESSES: Array<[string, string, string, string]> = [
  ['192.0.2.10', '192.0.2.10', '192.0.2.10', '192.0.2.10'],
  ['2001:db8::a', '2001:db8::a', '2001:DB8:0:0:0:0:0:A', '2001:0db8::000a'],
  ['2001:db8:0:0:1::', '2001:db8:0:0:1::', '2001:db8:0:0:1:0:0:0', '2001:db8::1:0:0:0'],
  ['2001:db8::1:0:0:1', '2001:db8::1:0:0:1', '2001:db8:0:0:1:0:0:1', '2001:DB8::1:0:0:1'],
  ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', '2001:db8:0000:1:1:1:1:1', '2001:db8::1:1:1:1:1'],
  ['0:0:0:1::', '::1:0:0:0:0', '0:0:0:1:0:0:0:0', '::1:0:0:0:0'], // the longer run wins,
];

function config(statics: string[]) {
  const yaml = [
    'mode: host',
    'datapath: none',
    'channels:',
    '  hub: { kind: tunnel, gateway: 198.51.100.1, esp: aes256gcm16 }',
    'tables:',
    '  default:',
    `    - { match: "*.corp.example", channel: hub }`,
    'static:',
    ...statics.map((c) => `  - { cidr: "${c}", channel: hub }`),
  ].join('\n');
  return loadConfigText(yaml, 'keys.yaml', new Map(), deps());
}

/** The addresses a real answer yields, as the proxy hands them to register(). */
function answerAddrs(answers: Array<{ type: 'A' | 'AAAA'; data: string }>): string[] {
  const q = dnsPacket.encode({ type: 'query', id: 9, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'AAAA', name: NAME }] });
  const parsed = parseQuery(q);
  if (parsed.kind !== 'ok') throw new Error('query did not parse');
  const a = dnsPacket.encode({
    type: 'response',
    id: 9,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'AAAA', name: NAME }],
    answers: answers.map((r) => ({ ...r, name: NAME, ttl: 300 })),
  });
  return scanAnswer(a, parsed.query.question.length, parsed.query.qname).addrs;
}

describe('registry keys', () => {
  test('one entry per address when an answer, a static entry and a control filter spell it differently', async () => {
    const cfg = config(ADDRESSES.map(([, , fromConfig]) => fromConfig));
    const policy = Policy.fromConfig(cfg);
    const hub = policy.channel('hub')!;
    const r = rig({ channels: cfg.channels });
    r.registry.setStatics(policy.statics());
    const statics = addrsIn(r.dp);
    expect(statics).toEqual(ADDRESSES.map(([key]) => `0/${key}`).sort());

    const fromDns = answerAddrs(ADDRESSES.map(([, wire]) => ({ type: wire.includes(':') ? 'AAAA' : 'A', data: wire })));
    expect(fromDns).toEqual(ADDRESSES.map(([key]) => key));
    await r.registry.register({ group: 0, channel: hub, names: [NAME], addrs: fromDns, ttlS: 300, queryName: NAME });
    // the answer landed on the static entries: no second key for any address
    expect(addrsIn(r.dp)).toEqual(statics);
    for (const e of r.registry.list()) expect(e.names).toContain(NAME);

    const control = createControlHandlers({ registry: r.registry, clock: r.clock });
    for (const [key, , , typed] of ADDRESSES) {
      const rows = (await control.list!({ address: typed })) as Array<{ address: string }>;
      expect(rows.map((row) => row.address)).toEqual([key]);
    }
  });

  test('flush --address retires the entry an answer made when the operator types another spelling', async () => {
    const cfg = config([]);
    const hub = cfg.channels.find((c) => c.name === 'hub')!;
    const r = rig({ channels: cfg.channels });
    const fromDns = answerAddrs(ADDRESSES.map(([, wire]) => ({ type: wire.includes(':') ? 'AAAA' : 'A', data: wire })));
    await r.registry.register({ group: 0, channel: hub, names: [NAME], addrs: fromDns, ttlS: 300, queryName: NAME });
    const control = createControlHandlers({ registry: r.registry, clock: r.clock });
    for (const [key, , , typed] of ADDRESSES) {
      expect(await control.flush!({ address: typed })).toEqual({ released: 0, retired: 1 });
      expect(r.registry.list().find((e) => e.addr === key)?.retired).toBe(true);
    }
    expect(r.registry.list().every((e) => e.retired)).toBe(true);
  });

  test('an IPv4-mapped AAAA keeps its own key and a control filter finds it when typed in mixed notation', async () => {
    const r = rig();
    const addrs = answerAddrs([
      { type: 'AAAA', data: '::ffff:192.0.2.11' },
      { type: 'A', data: '192.0.2.11' },
    ]);
    expect(addrs).toEqual(['::ffff:c000:20b', '192.0.2.11']);
    const cfg = config([]);
    const hub = cfg.channels.find((c) => c.name === 'hub')!;
    await r.registry.register({ group: 0, channel: hub, names: [NAME], addrs, ttlS: 300, queryName: NAME });
    const control = createControlHandlers({ registry: r.registry, clock: r.clock });
    const rows = (await control.list!({ address: '::FFFF:192.0.2.11' })) as Array<{ address: string }>;
    expect(rows.map((row) => row.address)).toEqual(['::ffff:c000:20b']);
  });

  test('a static entry written as an IPv4-mapped address takes the IPv4 key when an A answer names the same address', async () => {
    const cfg = config(['::ffff:192.0.2.12']);
    const policy = Policy.fromConfig(cfg);
    const r = rig({ channels: cfg.channels });
    r.registry.setStatics(policy.statics());
    await r.registry.register({ group: 0, channel: policy.channel('hub')!, names: [NAME], addrs: answerAddrs([{ type: 'A', data: '192.0.2.12' }]), ttlS: 300, queryName: NAME });
    expect(addrsIn(r.dp)).toEqual(['0/192.0.2.12']);
  });
});
