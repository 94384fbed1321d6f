/**
 * Forwarding rules (conditional forwarding, issue 12): a rule with an upstream and no channel.
 * S102 (preDecide) takes the first rule of all that matches the query name; S104 (decide) the
 * first rule *with a channel* that matches any name of the chain — a forwarding rule never
 * protects and never unprotects (README "Rules").
 */
import { describe, expect, test } from 'bun:test';
import { Policy } from '../../src/policy/policy.ts';
import { explain } from '../../src/policy/explain.ts';
import { parseRulesFile } from '../../src/config/rules-file.ts';
import { ruleList } from '../../src/policy/rule-list.ts';
import { tableGroup } from '../../src/policy/group.ts';
import type { Table } from '../../src/policy/types.ts';
import { channels, config, table } from './fixtures.ts';

const chans = channels(['hub', { kind: 'tunnel', gateway: '192.0.2.1' }], ['partner', { kind: 'peer' }]);
const upstreams = ['default', 'lan', 'corp'].map((name, i) => ({ name, servers: [{ transport: 'dns' as const, address: `127.0.0.${i + 1}`, port: 53 }] }));

function policy(rules: Array<[string, string | null, string?]>): Policy {
  return Policy.fromConfig(config({ upstreams, channels: chans, tables: [table('default', rules)] }));
}

/** The same rules as a rules file (packed): the policy must read them alike. */
function packedPolicy(text: string): Policy {
  const t: Table = { id: 'default', group: tableGroup('default'), rules: ruleList([parseRulesFile(text, 't.rules', {})]) };
  return Policy.fromConfig(config({ upstreams, channels: chans, tables: [t] }));
}

// *.lan forwards to lan; nas.lan is protected below it; *.corp.example protected through corp;
// db.corp.example forwards to corp (below a rule covering it); *.cdn.example protected.
const RULES: Array<[string, string | null, string?]> = [
  ['*.lan', null, 'lan'],
  ['nas.lan', 'hub'],
  ['*.corp.example', 'hub', 'corp'],
  ['db.corp.example', null, 'corp'],
  ['*.cdn.example', 'partner'],
  ['wiki.intra', null, 'corp'],
];
const FILE = ['*.lan - lan', 'nas.lan hub', '*.corp.example hub corp', 'db.corp.example - corp', '*.cdn.example partner', 'wiki.intra - corp'].join('\n');

describe('policy/forwarding', () => {
  describe.each([
    ['plain rules', () => policy(RULES)],
    ['a rules file', () => packedPolicy(FILE)],
    ['matchers built elsewhere', () => {
      const cfg = config({ upstreams, channels: chans, tables: [table('default', RULES)] });
      const { built, buffers } = Policy.fromConfig(cfg).exportMatchers();
      return Policy.fromConfig(cfg, structuredClone(built, { transfer: buffers }));
    }],
  ])('with %s', (_what, make) => {
    const p = make();

    // [query name, chain after it, upstream (S102), its rule, channel (S104), its rule]
    test.each([
      ['router.lan', [], 'lan', 0, null, null],
      ['ROUTER.LAN.', [], 'lan', 0, null, null],
      // the forwarding rule picks the upstream, the protecting rule below it still protects
      ['nas.lan', [], 'lan', 0, 'hub', 1],
      ['x.corp.example', [], 'corp', 2, 'hub', 2],
      // a forwarding rule under a protecting one that covers it never picks the upstream: corp either way
      ['db.corp.example', [], 'corp', 2, 'hub', 2],
      // forwarded, the CNAME target protected: the target's rule protects, the query's upstream stays
      ['wiki.intra', ['edge.cdn.example'], 'corp', 5, 'partner', 4],
      // protected query whose CNAME target a forwarding rule matches: still protected
      ['app.corp.example', ['app.lan'], 'corp', 2, 'hub', 2],
      // forwarded query whose CNAME target is another forwarded name: nothing protected
      ['printer.lan', ['wiki.intra'], 'lan', 0, null, null],
      ['www.example.org', [], null, null, null, null],
    ] as const)('%s (chain %p): upstream %p by rule %p, channel %p by rule %p', (qname, chain, up, upRule, channel, chRule) => {
      const pre = p.preDecide('127.0.0.1', qname);
      expect([pre.upstream, pre.rule?.index ?? null]).toEqual([up, upRule]);
      const d = p.decide('127.0.0.1', [qname, ...chain]);
      expect([d.channel?.name ?? null, d.rule?.index ?? null]).toEqual([channel, chRule]);
    });

    test('gives the protecting decision for a group without looking at forwarding rules when a reload re-decides', () => {
      expect(p.decideInGroup(0, ['nas.lan'])?.channel?.name).toBe('hub');
      expect(p.decideInGroup(0, ['router.lan'])?.channel).toBeNull();
    });
  });

  test('picks the protecting rule in preDecide when it comes before the forwarding one', () => {
    const p = policy([['nas.lan', 'hub', 'corp'], ['*.lan', null, 'lan']]);
    const pre = p.preDecide('127.0.0.1', 'nas.lan');
    expect([pre.upstream, pre.rule?.index, pre.channel?.name]).toEqual(['corp', 0, 'hub']);
    expect(p.preDecide('127.0.0.1', 'router.lan').upstream).toBe('lan');
  });

  test('sends a protected name to the default upstream when its rule above the forwarding one names none', () => {
    const p = policy([['nas.lan', 'hub'], ['*.lan', null, 'lan']]);
    expect(p.preDecide('127.0.0.1', 'nas.lan').upstream).toBeNull();
  });

  test('refuses a forwarding rule without an upstream', () => {
    expect(() => policy([['*.lan', null]])).toThrow(/names neither a channel nor an upstream/);
  });

  test('refuses a forwarding rule naming an unknown upstream', () => {
    expect(() => policy([['*.lan', null, 'nope']])).toThrow(/unknown upstream "nope"/);
  });

  describe('explain', () => {
    const p = policy(RULES);

    test('says a forwarded name goes to its upstream unprotected', () => {
      expect(explain(p, 'router.lan', null)).toEqual({
        name: 'router.lan',
        client: null,
        table: 'default',
        rule: { pattern: '*.lan', index: 0, kind: 'suffix', forwarding: true },
        channel: null,
        upstream: 'lan',
      });
    });

    test('names both rules when one forwards and another protects', () => {
      const e = explain(p, 'nas.lan', null);
      expect(e.rule).toEqual({ pattern: 'nas.lan', index: 1, kind: 'exact' });
      expect(e.channel?.name).toBe('hub');
      expect(e.upstream).toBe('lan');
      expect(e.upstreamRule).toEqual({ pattern: '*.lan', index: 0, kind: 'suffix', forwarding: true });
    });

    test('leaves upstreamRule out when one rule picks both', () => {
      const e = explain(p, 'x.corp.example', null);
      expect([e.rule?.index, e.upstream, 'upstreamRule' in e]).toEqual([2, 'corp', false]);
    });
  });
});
