import { describe, expect, test } from 'bun:test';
import { Policy } from '../../src/policy/policy.ts';
import { explain } from '../../src/policy/explain.ts';
import { channels, config, table } from './fixtures.ts';
import { parseCidr } from '../../src/policy/cidr.ts';
import { gen, naiveLookup, randomAddressText, randomCidrTexts } from './client-random.ts';

const chans = channels(
  ['hub', { kind: 'tunnel', gateway: '192.0.2.1' }],
  ['partner', { kind: 'peer', esp: 'chacha20poly1305' }],
);

describe('policy/policy', () => {
  const p = Policy.fromConfig(
    config({
      upstreams: [
        { name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: 53 }] },
        { name: 'corp', servers: [{ transport: 'dns', address: '10.0.0.53', port: 53 }] },
      ],
      channels: chans,
      tables: [
        table('default', [['*.corp.example', 'hub', 'corp'], ['*.partner.test', 'partner']]),
        table('lab', [['*.lab.example', 'hub']]),
      ],
      clients: [{ cidr: '10.9.0.0/16', table: 'lab' }],
      statics: [{ cidr: '198.51.100.0/24', channel: 'hub', table: 'default' }],
    }),
  );

  test('protects the query when a CNAME target matches a rule', () => {
    const d = p.decide('127.0.0.1', ['www.example.com', 'edge.partner.test']);
    expect(d.rule?.condition.pattern).toBe('*.partner.test');
    expect(d.channel?.name).toBe('partner');
    expect(d.matchedName).toBe('edge.partner.test');
  });

  test('serialises a hit decision with its rule and without the rule table', () => {
    const j = JSON.parse(JSON.stringify(p.decide('127.0.0.1', ['A.Corp.Example.'])));
    expect(j).toMatchObject({ table: 'default', group: 0, rule: { index: 0, channel: 'hub' }, channel: { name: 'hub' }, upstream: 'corp', matchedName: 'a.corp.example' });
    expect(Object.keys(j).sort()).toEqual(['channel', 'group', 'matchedName', 'rule', 'table', 'upstream']);
  });

  test('prefers the earlier rule when the query and the chain match different rules', () => {
    const d = p.decide('127.0.0.1', ['x.partner.test', 'y.corp.example']);
    expect(d.rule?.index).toBe(0);
  });

  test('returns no channel when nothing matches', () => {
    const d = p.decide('127.0.0.1', ['www.example.com']);
    expect(d).toEqual({ table: 'default', group: 0, rule: null, channel: null, upstream: null });
  });

  test('gives every miss the same answer when a caller tries to change one', () => {
    const d = p.decide('127.0.0.1', ['www.example.com']);
    expect(() => {
      (d as { channel: unknown }).channel = chans[0];
    }).toThrow();
    expect(p.decide('127.0.0.1', ['other.example.com'])).toEqual({ table: 'default', group: 0, rule: null, channel: null, upstream: null });
    expect(p.decide('10.9.1.1', ['www.example.com'])).toEqual({ table: 'lab', group: p.tableFor('10.9.1.1').group, rule: null, channel: null, upstream: null });
    expect(p.preDecide('127.0.0.1', 'www.example.com')).toEqual({ table: 'default', group: 0, rule: null, channel: null, upstream: null });
  });

  test('picks the dedicated upstream in preDecide when the rule names one', () => {
    expect(p.preDecide('127.0.0.1', 'git.corp.example').upstream).toBe('corp');
    expect(p.preDecide('127.0.0.1', 'a.partner.test').upstream).toBeNull();
  });

  test('uses the client table when the client falls in its CIDR', () => {
    expect(p.decide('10.9.1.1', ['a.lab.example']).channel?.name).toBe('hub');
    expect(p.decide('10.9.1.1', ['a.corp.example']).channel).toBeNull();
    expect(p.decide('10.8.1.1', ['a.lab.example']).channel).toBeNull();
  });

  test('resolves statics with their channel and group', () => {
    expect(p.statics()).toEqual([{ cidr: '198.51.100.0/24', table: 'default', group: 0, channel: chans[0]! }]);
  });

  test('explains a match in the documented JSON shape', () => {
    const e = JSON.parse(JSON.stringify(explain(p, 'Foo.Partner.Test.', '10.1.1.1')));
    expect(Object.keys(e).slice(0, 6)).toEqual(['name', 'client', 'table', 'rule', 'channel', 'upstream']);
    expect(e.name).toBe('foo.partner.test');
    expect(e.rule).toMatchObject({ pattern: '*.partner.test', index: 1 });
    expect(e.channel).toMatchObject({ name: 'partner', kind: 'peer', identity: '%name', peerIdentity: 'foo.partner.test', esp: 'chacha20poly1305' });
    expect(e.upstream).toBe('default');
  });

  // Issue 11 item 11: names the operator meant to protect went out in clear under the old reading.
  test.each([
    ['corp.example', '*.corp.example', 'hub'],
    ['biglobe.ne.jp', '*.biglobe.*', 'partner'],
  ])('protects %p under %p when the wildcard stands for no label', (name, pattern, channel) => {
    const q = Policy.fromConfig(config({ channels: chans, tables: [table('default', [['*.corp.example', 'hub'], ['*.biglobe.*', 'partner']])] }));
    const d = q.decide('10.1.1.1', [name]);
    expect([d.rule?.condition.pattern, d.channel?.name]).toEqual([pattern, channel]);
    expect(explain(q, name, null).rule).toMatchObject({ pattern });
  });

  test('explains a miss with null rule and channel', () => {
    const e = explain(p, 'example.org', null);
    expect(e).toEqual({ name: 'example.org', client: null, table: 'default', rule: null, channel: null, upstream: 'default' });
  });

  test('refuses a config when a rule names an unknown channel', () => {
    expect(() => Policy.fromConfig(config({ tables: [table('default', [['a.b', 'nope']])] }))).toThrow(/unknown channel "nope"/);
  });
});

describe('policy/policy clients', () => {
  const p = Policy.fromConfig(
    config({
      channels: chans,
      tables: [table('v4', [['*.a.example', 'hub']]), table('v6', [['*.b.example', 'hub']]), table('v6wide', [['*.c.example', 'hub']])],
      clients: [
        { cidr: '10.0.0.0/8', table: 'v4' },
        { cidr: '2001:db8:1::/48', table: 'v6' },
        { cidr: '2001:db8::/32', table: 'v6wide' },
      ],
    }),
  );

  test.each([
    ['10.1.2.3', 'v4'],
    ['::ffff:10.1.2.3', 'v4'],
    ['2001:db8:1::9', 'v6'],
    ['2001:db8:2::9', 'v6wide'],
    ['2001:db9::1', 'default'],
    ['192.0.2.1', 'default'],
    ['', 'default'],
  ])('classifies client %p into table %p', (ip, id) => {
    expect(p.tableFor(ip).id).toBe(id);
  });

  test('gives an unconfigured default table no rules when a client matches no range', () => {
    expect(p.decide('192.0.2.1', ['x.a.example'])).toMatchObject({ table: 'default', group: 0, rule: null, channel: null });
  });
});

describe('policy/policy client memo', () => {
  const tables = ['t0', 't1', 't2', 't3'].map((id) => table(id, [[`*.${id}.example`, 'hub']]));

  test.each([11, 12, 13])('classifies random clients as the uncached longest-prefix scan does, asked twice (seed %p)', (seed) => {
    const g = gen(seed);
    const mismatches: string[] = [];
    for (let trial = 0; trial < 30; trial++) {
      const clients = randomCidrTexts(g, 1 + g.int(10)).map((cidr) => ({ cidr, table: g.pick(tables).id }));
      const p = Policy.fromConfig(config({ channels: chans, tables, clients }));
      const entries = clients.map((c) => [parseCidr(c.cidr), c.table] as const);
      const cidrs = entries.map(([c]) => c);
      const ips = Array.from({ length: 30 }, () => randomAddressText(g, cidrs));
      for (const ip of [...ips, ...ips]) {
        const want = (ip ? naiveLookup(entries, ip) : undefined) ?? 'default';
        const name = `x.${want}.example`;
        const [got, d] = [p.tableFor(ip).id, p.decide(ip, [name])];
        const wantChannel = want === 'default' ? null : 'hub';
        if (got !== want || d.table !== want || (d.channel?.name ?? null) !== wantChannel) {
          mismatches.push(`seed ${seed} ${JSON.stringify(ip)} in ${JSON.stringify(clients)}: want ${want}, tableFor ${got}, decide ${d.table}`);
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  test('classifies by the new client ranges after a reload swaps the policy', () => {
    const before = Policy.fromConfig(config({ channels: chans, tables, clients: [{ cidr: '10.0.0.0/8', table: 't1' }] }));
    const after = Policy.fromConfig(config({ channels: chans, tables, clients: [{ cidr: '10.1.0.0/16', table: 't2' }] }));
    for (let i = 0; i < 3; i++) {
      expect(before.tableFor('10.1.2.3').id).toBe('t1');
      expect(after.tableFor('10.1.2.3').id).toBe('t2');
      expect(after.tableFor('10.2.0.1').id).toBe('default');
      expect(before.tableFor('10.2.0.1').id).toBe('t1');
    }
  });
});
