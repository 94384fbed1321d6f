import { describe, expect, test } from 'bun:test';
import { checkConfig, problemText, type Problem } from '../../src/config/check.ts';
import { deps, flags } from './fixtures.ts';

const HEAD = 'upstreams:\n  default: 192.0.2.53\nchannels:\n  hub: {kind: tunnel, gateway: 192.0.2.1}\n';

function check(text: string, extra: Map<string, string[]> = new Map(), files: Record<string, string> = {}, interfaces?: string[]) {
  const values = new Map([['config', ['c.yaml']], ...extra]);
  return checkConfig(values, deps({ 'c.yaml': text, ...files }), interfaces ? { interfaces: () => interfaces } : {});
}

const texts = (ps: Problem[]) => ps.map(problemText);

describe('config/check', () => {
  test('reports syntax, values, references, files and flags in one pass when all are wrong', () => {
    const r = check(
      [
        'mode: [host]',
        'min_hold: soon',
        HEAD.trimEnd(),
        'tables:',
        '  default:',
        '    - match: "*.corp.example"',
        '      channel: nochan',
        '    - match: "x.example"',
        '      channel: hub',
        '      upstream: nope',
        '    - rules_file: missing.rules',
        '      channel: hub',
        '',
      ].join('\n'),
      flags(['idle', 'never']),
    );
    expect(r.config).toBeUndefined();
    expect(texts(r.errors)).toEqual([
      'c.yaml:1: mode: must be one of host, gateway, intercept, not ["host"]',
      'c.yaml:2: min_hold: must be a whole number of seconds between 0 and 604800, not "soon"',
      'c.yaml:10: tables.default[0].channel: table "default" rule 0 (*.corp.example): unknown channel "nochan" (defined: hub)',
      'c.yaml:13: tables.default[1].upstream: table "default" rule 1 (x.example): unknown upstream "nope" (defined: default)',
      "c.yaml:14: tables.default[2]: cannot read rules file missing.rules: no such file or directory, open 'missing.rules'",
      '--idle: must be a whole number between 0 and 604800, not "never"',
    ]);
  });

  test('gives each problem its file, line and key when asked for the structured form', () => {
    const r = check(`${HEAD}listen: 5\n`);
    expect(r.errors).toEqual([{ file: 'c.yaml', line: 5, key: 'listen', message: '"5": "5" is not an IP address (host names are not resolved here)' }]);
  });

  test('reports the lines of a rules file with the config file when both have problems', () => {
    const r = check(`${HEAD}tables:\n  default:\n    - rules_file: r.rules\n      channel: hub\n    - {match: "y.example", channel: gone}\n`, new Map(), { 'r.rules': 'ok.example\nbad..example\n*.*\n' });
    expect(texts(r.errors)).toEqual([
      // (the rules file could not be read, so this is the table's first rule)
      'c.yaml:9: tables.default[1]: table "default" rule 0 (y.example): unknown channel "gone" (defined: hub)',
      'r.rules:2: "bad..example": "bad..example" has an empty label',
      'r.rules:3: "*.*" would match every name; write the domains to protect, e.g. "*.corp.example"',
    ]);
  });

  test('does not call a channel unknown when its definition could not be read', () => {
    const r = check('upstreams:\n  default: 192.0.2.53\nchannels:\n  hub: 5\ntables:\n  default:\n    - {match: "*.a.example", channel: hub}\n');
    expect(texts(r.errors)).toEqual(['c.yaml:4: channels.hub: channel "hub" must be a mapping with at least "kind"']);
  });

  test('does not check other settings against the default of one that could not be read', () => {
    const r = check(`mode: gateway\nlan: [lan0]\nlisten: [nowhere]\n${HEAD}clients:\n  - {cidr: 10.1.0.0/16, table: default}\n`);
    expect(texts(r.errors)).toEqual(['c.yaml:3: listen: "nowhere": "nowhere" is not an IP address (host names are not resolved here)']);
  });

  test('returns the configuration and no error when it is valid', () => {
    const r = check(`${HEAD}tables:\n  default:\n    - {match: "*.a.example", channel: hub}\n`);
    expect(r.errors).toEqual([]);
    expect(r.config!.tables[0]!.rules.length).toBe(1);
  });

  test('refuses an unreadable file alone when there is nothing to check the flags against', () => {
    const r = checkConfig(new Map([['config', ['gone.yaml']], ['mode', ['gateway']]]), deps({}));
    expect(texts(r.errors)).toEqual(["--config: cannot read gone.yaml: no such file or directory, open 'gone.yaml'"]);
    expect(r.warnings).toEqual([]);
  });

  test('reports a YAML syntax error at its line when the file does not parse', () => {
    const r = check('mode: host\nlisten: [127.0.0.1:53\nwan: [eth0]\n');
    expect(r.errors.length).toBe(1);
    expect(r.errors[0]).toMatchObject({ file: 'c.yaml', key: null });
    expect(r.errors[0]!.message).toContain('YAML syntax error');
  });
});

describe('config/check warnings', () => {
  test('warns about a rule that never wins and one written twice when a table has them', () => {
    const r = check(`${HEAD}tables:\n  default:\n    - {match: "*.corp.example", channel: hub}\n    - {match: "git.corp.example", channel: hub}\n    - {match: "*.corp.example", channel: hub}\n`);
    expect(r.config).toBeDefined();
    expect(texts(r.warnings)).toEqual([
      'c.yaml:8: tables.default[1]: table "default" rule #1 "git.corp.example" never wins: rule #0 "*.corp.example" (c.yaml:7) matches every name it matches — remove it, or move it above that rule if it should win',
      'c.yaml:9: tables.default[2]: table "default" rule #2 "*.corp.example" repeats rule #0 "*.corp.example" (c.yaml:7): it never wins — remove it',
    ]);
  });

  test('does not compare rules of different tables when two tables hold the same pattern', () => {
    const r = check(`${HEAD}tables:\n  default:\n    - {match: "*.corp.example", channel: hub}\n  eng:\n    - {match: "*.corp.example", channel: hub}\n`);
    expect(r.warnings).toEqual([]);
  });

  test('warns about a setting the mode ignores when lan is set in host mode', () => {
    const r = check(`mode: host\nlan: [eth1]\n${HEAD}`);
    expect(texts(r.warnings)).toEqual(['c.yaml:2: lan: mode host does not use it (only gateway, intercept) — remove it, or set the mode that needs it']);
  });

  test('warns about an interface this machine does not have when lan or wan names one', () => {
    const r = check(`mode: gateway\nlan: [lan0]\nwan: [wan0, ppp9]\n${HEAD}`, new Map(), {}, ['lo', 'lan0', 'wan0']);
    expect(texts(r.warnings)).toEqual([
      'c.yaml:3: wan: interface "ppp9" does not exist here (interfaces: lan0, lo, wan0); the leak guard goes on it when it appears — check the name',
    ]);
  });

  test.each([
    ['0.0.0.0:53', true],
    ['[::]:53', true],
    ['198.51.100.7:53', true],
    ['127.0.0.53:53', false],
    ['10.1.0.1:53', false],
    ['192.168.1.1:53', false],
    ['[fd00::1]:53', false],
  ])('warns that listen %s answers outside clients with REFUSED (%p) when no allow_clients is set, never calling it an open resolver', (listen, outside) => {
    const r = check(`listen: ["${listen}"]\n${HEAD}`);
    expect(r.warnings.some((w) => w.key === 'listen' && w.message.includes('every other client gets REFUSED — set allow_clients'))).toBe(outside);
    expect(r.warnings.some((w) => w.message.includes('open resolver'))).toBe(false);
  });

  test.each([
    ['0.0.0.0:53', '0.0.0.0/0', true],
    ['[::]:53', '::/0', true],
    ['198.51.100.7:53', '0.0.0.0/0', true],
    ['198.51.100.7:53', '198.51.100.0/24', false],
    ['10.1.0.1:53', '0.0.0.0/0', false],
  ])('warns that listen %s with allow_clients %s is an open resolver (%p)', (listen, allow, open) => {
    const r = check(`listen: ["${listen}"]\nallow_clients: ["${allow}"]\n${HEAD}`);
    expect(r.warnings.some((w) => w.key === 'allow_clients' && w.message.includes('an open resolver anyone can use'))).toBe(open);
  });

  test.each([
    [['0.0.0.0:53', '127.0.0.1:53'], 'c.yaml:1: listen: 0.0.0.0:53 and 127.0.0.1:53 overlap: 0.0.0.0 takes port 53 on every IPv4 address, so both cannot be bound — keep one of them'],
    [['[::]:53', '[fd00::1]:53'], 'c.yaml:1: listen: [::]:53 and [fd00::1]:53 overlap: [::] takes port 53 on every IPv6 address, so both cannot be bound — keep one of them'],
  ])('refuses listen %p, which cannot all be bound, before start fails with EADDRINUSE', (listen, message) => {
    const r = check(`listen: ${JSON.stringify(listen)}\nallow_clients: [10.0.0.0/8]\n${HEAD}`);
    expect(texts(r.errors)).toEqual([message]);
  });

  test.each([
    [['0.0.0.0:53', '[::]:53'], true],
    [['[::]:53', '127.0.0.1:53'], true],
    [['[::]:53', '127.0.0.1:5353'], false],
    [['0.0.0.0:53', '[::1]:53'], false],
  ])('warns that [::] is dual-stack when listen %p puts an IPv4 address on its port (%p)', (listen, warned) => {
    const r = check(`listen: ${JSON.stringify(listen)}\nallow_clients: [10.0.0.0/8]\n${HEAD}`);
    expect(r.errors).toEqual([]);
    expect(r.warnings.some((w) => w.key === 'listen' && w.message.includes('(sockets on :: are dual-stack)'))).toBe(warned);
  });

  test('keeps the warnings when the configuration also has errors', () => {
    const r = check(`mode: host\nlan: [eth1]\nidle: -1\n${HEAD}`);
    expect(r.errors.length).toBe(1);
    expect(r.warnings.map((w) => w.key)).toEqual(['lan']);
  });

  test('leaves out the checks that depend on the mode when the mode could not be read', () => {
    const r = check(`mode: gatway\nlan: [eth1]\n${HEAD}`);
    expect(r.warnings).toEqual([]);
  });
});
