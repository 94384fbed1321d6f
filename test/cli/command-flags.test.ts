/**
 * Each command takes only its own flags (issue 11 item 12, issue 15): anything else is refused
 * before the command does anything, naming the command and where to look; `help COMMAND`
 * lists exactly the flags the command takes.
 */
import { describe, expect, test } from 'bun:test';
import { renderHelp } from '../../src/cli/help.ts';
import { COMMAND_FLAGS, flagsOf, parseArgs } from '../../src/config/flags.ts';
import { CONFIG_COMMANDS } from '../../src/config/setting.ts';
import { CONFIG_FILE_FLAG, SETTING_FLAGS, SETTINGS } from '../../src/config/settings.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { cli } from './fixtures.ts';

const COMMANDS = Object.keys(COMMAND_FLAGS);
const EVERY_FLAG = [...new Set([CONFIG_FILE_FLAG, ...SETTING_FLAGS, ...Object.values(COMMAND_FLAGS).flat()].map((f) => f.name))];

/** The `--name` of every flag line in a help text (lines that start with two spaces and --). */
function helpFlags(text: string): string[] {
  return [...text.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]!).sort();
}

function refusal(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('cli/command-flags', () => {
  test.each(COMMANDS)('help %s lists exactly the flags the command takes', (command) => {
    expect(helpFlags(renderHelp(command))).toEqual(flagsOf(command).map((f) => f.name).sort());
  });

  test.each(COMMANDS)('%s refuses every flag it does not take, naming itself and its help', (command) => {
    const taken = new Set(flagsOf(command).map((f) => f.name));
    const settingFlags = new Set(SETTING_FLAGS.map((f) => f.name));
    for (const name of EVERY_FLAG.filter((n) => !taken.has(n))) {
      const message = refusal([command, `--${name}`, 'x']);
      if (command === 'policy-server' && settingFlags.has(name)) {
        // a node's setting: said as such, not as an unknown flag
        expect(message).toStartWith(`--${name}: the policy server does not use `);
        expect(message).toContain(`it is a setting of \`dnsseal run\` (see "dnsseal help ${command}"`);
        continue;
      }
      expect(message).toStartWith(`--${name}: unknown flag for "dnsseal ${command}"`);
      expect(message).toEndWith(`see "dnsseal help ${command}"`);
    }
  });

  test.each([
    ['--datapath', 'none'],
    ['--cache-size', '0'],
    ['--tls-relay', '127.0.0.1:1'],
    ['--control', '/tmp/x.sock'],
    ['--static', '10.0.0.0/8=hub'],
  ])('policy-server refuses %s by name as a setting of run when given it', (flag, value) => {
    const key = SETTINGS.find((s) => (s.kind === 'section' ? s.flags.some((f) => `--${f.name}` === flag) : s.flag && `--${s.flag.name}` === flag))!.key;
    expect(refusal(['policy-server', '--config', 'ps.yaml', flag!, value!])).toBe(
      `${flag}: the policy server does not use ${key}; it is a setting of \`dnsseal run\` (see "dnsseal help policy-server" for what it takes)`,
    );
  });

  test.each(CONFIG_COMMANDS)('%s takes every setting flag and --config', (command) => {
    const taken = new Set(flagsOf(command).map((f) => f.name));
    expect(SETTING_FLAGS.filter((f) => !taken.has(f.name))).toEqual([]);
    expect(taken.has('config')).toBe(true);
  });

  test('names only commands that exist in the table of settings', () => {
    const named = new Set([...CONFIG_FILE_FLAG.commands, ...SETTINGS.flatMap((s) => s.commands)]);
    expect([...named].filter((c) => !COMMANDS.includes(c))).toEqual([]);
  });

  test('says a configuration flag belongs to the commands that read the configuration when status gets one', () => {
    expect(refusal(['status', '--mode', 'gateway'])).toBe(
      '--mode: unknown flag for "dnsseal status" (a configuration flag: run, check, explain take it); see "dnsseal help status"',
    );
  });

  test('asks for a command when flags come without one', () => {
    expect(refusal(['--config', 'c.yaml'])).toStartWith('no command before the flags (--config …): dnsseal COMMAND [FLAGS]');
    expect(parseArgs([]).command).toBe('help');
  });

  test('says which command owns a flag when another command gets it', () => {
    expect(refusal(['status', '--client', '10.0.0.1'])).toBe('--client: unknown flag for "dnsseal status" (explain takes it); see "dnsseal help status"');
  });

  test('keeps --config and --control for the control commands and routes them to the configuration', () => {
    const a = parseArgs(['flush', '--config', 'c.yaml', '--control', '/tmp/s', '--channel', 'hub']);
    expect([...a.settings.keys()]).toEqual(['config', 'control']);
    expect(a.values.get('channel')).toEqual(['hub']);
  });

  test('reads down\'s kernel settings from flags when down gets them', () => {
    const a = parseArgs(['down', '--pin-root', '/sys/fs/bpf/x', '--vici-socket', '/run/c.vici', '--intercept-pool', '100.64.0.0/24']);
    expect([...a.settings.keys()]).toEqual(['pin-root', 'vici-socket', 'intercept-pool']);
  });

  test('does nothing and exits 1 when flush gets a configuration flag (issue 11 item 12)', async () => {
    const h = await cli(['flush', '--mode', 'gateway', '--control', '/tmp/x.sock'], { control: () => ({ released: 0, retired: 99 }) });
    expect([h.code, h.requests.length, h.out]).toEqual([1, 0, '']);
    expect(h.err).toContain('unknown flag for "dnsseal flush"');
  });
});

describe('cli/command-flags in the README', () => {
  test.each(COMMANDS.filter((c) => COMMAND_FLAGS[c]!.length > 0))('lists the own flags of %s in the README commands table', async (command) => {
    const readme = await Bun.file(new URL('../../README.md', import.meta.url)).text();
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${command}\``) || l.startsWith(`| \`${command} `));
    expect(row).toBeDefined();
    const own = row!.split(' | ')[2]!;
    for (const f of COMMAND_FLAGS[command]!) expect([command, own.includes(`--${f.name}`)]).toEqual([command, true]);
  });
});
