import { describe, expect, test } from 'bun:test';
import { loadConfig } from '../../src/config/load.ts';
import { parseArgs } from '../../src/config/flags.ts';
import { parseRulesFile } from '../../src/config/rules-file.ts';
import { deps } from './fixtures.ts';

const CONF = `upstreams:
  default: 192.0.2.53
  corp: 10.0.0.53
channels:
  hub:
    kind: tunnel
    gateway: 192.0.2.1
  partner:
    kind: peer
tables:
  default:
    - match: "first.example"
      channel: partner
    - rules_file: partners.rules
      channel: hub
    - match: "*.last.example"
      channel: hub
`;
const RULES = `# pattern  channel  upstream
*.corp.example    hub     corp
git.partner.example partner

sato.*            # channel from the item
`;

describe('config/rules-file', () => {
  test('inserts the file rules where the item stands, with defaults and file:line sources', () => {
    const c = loadConfig(parseArgs(['check', '--config', '/etc/dnsseal/c.yaml']).values, deps({ '/etc/dnsseal/c.yaml': CONF, '/etc/dnsseal/partners.rules': RULES }));
    expect(c.tables[0]!.rules.map((r) => [r.index, r.condition.pattern, r.channel, r.upstream, r.source])).toEqual([
      [0, 'first.example', 'partner', undefined, '/etc/dnsseal/c.yaml:12'],
      [1, '*.corp.example', 'hub', 'corp', '/etc/dnsseal/partners.rules:2'],
      [2, 'git.partner.example', 'partner', undefined, '/etc/dnsseal/partners.rules:3'],
      [3, 'sato.*', 'hub', undefined, '/etc/dnsseal/partners.rules:5'],
      [4, '*.last.example', 'hub', undefined, '/etc/dnsseal/c.yaml:16'],
    ]);
  });

  test('appends a --rules-file to the default table', () => {
    const a = parseArgs(['check', '--config', 'c.yaml', '--rules-file', 'more.rules,channel=partner']);
    const c = loadConfig(a.values, deps({ 'c.yaml': CONF, 'partners.rules': RULES, 'more.rules': 'x.example\n' }));
    expect(c.tables[0]!.rules.at(-1)).toMatchObject({ channel: 'partner', source: 'more.rules:1' });
  });

  test.each([
    ['a.*.b hub\n', 'r.rules:1: "a.*.b": "*" must be a whole label'],
    ['ok.example hub\n\nnochannel.example\n', 'r.rules:3: "nochannel.example" has neither a channel nor an upstream'],
    ['ok.example hub\nnone.example -\n', 'r.rules:2: "none.example" has neither a channel nor an upstream'],
    ['a.example hub up extra\n', 'r.rules:1: too many fields'],
    ['x*.a hub\ny*.b hub\n', 'r.rules:2: "y*.b": "*" must be a whole label'],
  ])('reports file:line for %p', (text, message) => {
    expect(() => parseRulesFile(text, 'r.rules', {})).toThrow(message);
  });

  test('names the rules_file line when the file is missing', () => {
    expect(() => loadConfig(parseArgs(['check', '--config', 'c.yaml']).values, deps({ 'c.yaml': CONF }))).toThrow(/^c\.yaml:14: cannot read rules file partners\.rules: no such file/);
  });

  test('refuses an unknown channel in a file line at that line', () => {
    expect(() => loadConfig(parseArgs(['check', '--config', 'c.yaml']).values, deps({ 'c.yaml': CONF, 'partners.rules': 'a.example nope\n' }))).toThrow(
      /^partners\.rules:1: table "default" rule 1 \(a\.example\): unknown channel "nope"/,
    );
  });
});
