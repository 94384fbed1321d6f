import { describe, expect, test } from 'bun:test';
import { parseArgs } from '../../src/config/flags.ts';
import { parseChannelFlag } from '../../src/config/sections/channels.ts';
import { loadConfig } from '../../src/config/load.ts';
import { configError, deps, flags } from './fixtures.ts';

/** `channels:` block with the given lines for channel `p` (lines 3…), then a rule using it. */
const file = (...lines: string[]) => `channels:\n  p:\n${lines.map((l) => `    ${l}\n`).join('')}tables:\n  default:\n    - match: "*.p.example"\n      channel: p\n`;

function loadFile(text: string) {
  return loadConfig(flags(['config', 'c.yaml']), deps({ 'c.yaml': text }));
}

const errorOf = (run: () => unknown): string => configError(run).message;

function loadArgs(argv: string[]) {
  return loadConfig(parseArgs(['run', ...argv]).values, deps());
}

describe('config negotiate_timeout', () => {
  test('sets the channel wait when a peer channel gives negotiate_timeout', () => {
    const c = loadFile(file('kind: peer', 'negotiate_timeout: 5000'));
    expect(c.channels[0]).toMatchObject({ name: 'p', kind: 'peer', negotiate: 'before-answer', negotiateTimeoutMs: 5000 });
  });

  test('leaves the wait unset (the daemon-wide 2000 ms applies) when the key is absent', () => {
    const c = loadFile(file('kind: peer'));
    expect(c.channels[0]!.negotiateTimeoutMs).toBeUndefined();
    expect('negotiateTimeoutMs' in c.channels[0]!).toBe(false);
  });

  test('accepts the key next to an explicit negotiate: before-answer in flow style', () => {
    const c = loadFile('channels:\n  p: { kind: peer, negotiate: before-answer, negotiate_timeout: 100 }\n');
    expect(c.channels[0]!.negotiateTimeoutMs).toBe(100);
  });

  test.each([
    [99, 'c.yaml:4: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not 99'],
    [60001, 'c.yaml:4: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not 60001'],
    [1.5, 'c.yaml:4: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not 1.5'],
    ['"5000"', 'c.yaml:4: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not "5000"'],
    ['5s', 'c.yaml:4: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not "5s"'],
  ])('refuses negotiate_timeout: %p at its line when out of range or not a whole number', (value, message) => {
    expect(errorOf(() => loadFile(file('kind: peer', `negotiate_timeout: ${value}`)))).toStartWith(message);
  });

  test.each([100, 60000])('accepts the bound %p', (ms) => {
    expect(loadFile(file('kind: peer', `negotiate_timeout: ${ms}`)).channels[0]!.negotiateTimeoutMs).toBe(ms);
  });

  test('refuses negotiate_timeout on a tunnel channel at its line, naming the rules that use it', () => {
    const msg = errorOf(() => loadFile(file('kind: tunnel', 'gateway: 192.0.2.1', 'negotiate_timeout: 5000')));
    expect(msg).toStartWith('c.yaml:5: channel "p": negotiate_timeout applies to peer channels only');
    expect(msg).toContain('(used by table default rule 0 "*.p.example")');
  });

  test('refuses negotiate_timeout together with negotiate: on-traffic at the timeout line', () => {
    const msg = errorOf(() => loadFile(file('kind: peer', 'negotiate: on-traffic', 'negotiate_timeout: 5000')));
    expect(msg).toStartWith('c.yaml:5: channel "p": negotiate_timeout is the wait of negotiate: before-answer');
    expect(msg).toContain('on-traffic');
  });

  test('reports a misspelt key with a suggestion', () => {
    expect(errorOf(() => loadFile(file('kind: peer', 'negotiate_timout: 5000')))).toContain('negotiate_timeout');
  });
});

describe('config negotiate_timeout flag', () => {
  test('sets the wait when --channel NAME=peer,negotiate_timeout=MS is given', () => {
    const c = loadArgs(['--channel', 'p=peer,esp=aes128gcm16,negotiate_timeout=5000', '--protect', '*.p.example=p', '--upstream', '9.9.9.9']);
    expect(c.channels).toEqual([
      expect.objectContaining({ name: 'p', kind: 'peer', esp: 'aes128gcm16', negotiate: 'before-answer', negotiateTimeoutMs: 5000 }),
    ]);
  });

  test('turns the option into a number and leaves other text for the channel check', () => {
    expect(parseChannelFlag('p=peer,negotiate_timeout=300').input.negotiate_timeout).toBe(300);
    expect(parseChannelFlag('p=peer,negotiate_timeout=3s').input.negotiate_timeout).toBe('3s');
  });

  test('lets a --channel flag replace a file channel together with its timeout', () => {
    const a = parseArgs(['run', '--config', 'c.yaml', '--channel', 'p=peer,negotiate_timeout=700']);
    const c = loadConfig(a.values, deps({ 'c.yaml': file('kind: peer', 'negotiate_timeout: 5000') }));
    expect(c.channels[0]!.negotiateTimeoutMs).toBe(700);
  });

  test.each([
    [['--channel', 'p=peer,negotiate_timeout=3s'], '--channel: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not "3s"'],
    [['--channel', 'p=peer,negotiate_timeout=50'], '--channel: channel "p": negotiate_timeout must be a whole number of milliseconds between 100 and 60000, not 50'],
    [['--channel', 'p=peer,negotiate_timeout=-1'], '--channel: channel "p": negotiate_timeout must be a whole number'],
    [['--channel', 'p=peer,negotiate_timeout='], '--channel: channel "p": negotiate_timeout must be a whole number'],
    [['--channel', 'p=tunnel:192.0.2.1,negotiate_timeout=5000'], '--channel: channel "p": negotiate_timeout applies to peer channels only'],
    [['--channel', 'p=peer,negotiate=on-traffic,negotiate_timeout=5000'], '--channel: channel "p": negotiate_timeout is the wait of negotiate: before-answer'],
    [['--channel', 'p=peer,timeout=5000'], '--channel: unknown option "timeout=5000" (allowed: identity=…, local_identity=…, esp=…, negotiate=…, negotiate_timeout=…, tls_port=…, cert=…, key=…, ca=…)'],
  ])('refuses %p naming the flag', (argv, message) => {
    expect(errorOf(() => loadArgs([...argv, '--upstream', '9.9.9.9']))).toStartWith(message);
  });
});
