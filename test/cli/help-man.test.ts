/**
 * Everything reachable from the binary: `help` lists every command, `help COMMAND` and
 * `COMMAND --help` work for each, nothing the binary prints points into the repository, and the
 * man page (`dnsseal man`) is made from the same tables: its sections exist and it names every
 * command, flag, setting and section field.
 */
import { describe, expect, test } from 'bun:test';
import { COMMAND_FLAGS, settingFlagsOf } from '../../src/config/flags.ts';
import { CONFIG_FILE_FLAG, SETTINGS } from '../../src/config/settings.ts';
import { COMMANDS } from '../../src/cli/help.ts';
import { cli } from './fixtures.ts';

const ALL = Object.keys(COMMAND_FLAGS);
const roff = (s: string) => s.replace(/-/g, '\\-');

describe('cli/help', () => {
  test('help lists every command the parser knows when asked without a topic', async () => {
    const h = await cli(['help']);
    expect(h.code).toBe(0);
    for (const c of ALL) expect({ c, listed: new RegExp(`^  ${c} +\\S`, 'm').test(h.out) }).toEqual({ c, listed: true });
    for (const c of ['config-default', 'config-reference', 'install-unit', 'resolver-setup', 'policy-server', 'man']) expect(ALL).toContain(c);
    expect(Object.keys(COMMANDS).sort()).toEqual([...ALL].sort());
  });

  test.each(ALL)('help %s prints its usage, and %s --help the same, when asked', async (c) => {
    const h = await cli(['help', c]);
    expect([h.code, h.err]).toEqual([0, '']);
    expect(h.out).toStartWith(`Usage: dnsseal ${c}`);
    const flag = await cli([c, '--help']);
    expect(flag.out).toBe(h.out);
  });

  test('nothing the binary prints names a file of the repository when a user has only the binary', async () => {
    const outputs: Array<[string, string]> = [];
    for (const argv of [['help'], ...ALL.map((c) => ['help', c]), ['config-reference'], ['config-default'], ['man'], ['version']]) {
      outputs.push([argv.join(' '), (await cli(argv)).out]);
    }
    for (const [what, out] of outputs) {
      expect({ what, paths: out.match(/(?<![\w/])(src|test|bench|bpf)\/[\w./-]+|\b[\w-]+\.md\b|README/g) }).toEqual({ what, paths: null });
    }
  });
});

describe('cli/help examples', () => {
  test('every config path in the examples is the one the service unit and the package use', async () => {
    const unit = await Bun.file(new URL('../../src/ops/units/dnsseal.service', import.meta.url)).text();
    const packaged = /run --config (\S+)/.exec(unit)![1]!;
    const h = await cli(['help']);
    const paths = [...h.out.matchAll(/--config (\/\S+)/g)].map((m) => m[1]);
    expect(paths.length).toBeGreaterThan(0);
    expect(paths.filter((p) => p !== packaged)).toEqual([]);
  });
});

describe('cli/help reload', () => {
  test('explains every key of the reload reply', async () => {
    const h = (await cli(['help', 'reload'])).out.replace(/\n\s*/g, ' ');
    for (const k of ['released', 'moved', 'withdrawn', 'channelsLoaded', 'channelsReplaced', 'channelsUnloaded', 'listenAdded', 'listenRemoved', 'applied', 'restartNeeded']) {
      expect({ k, named: h.includes(k) }).toEqual({ k, named: true });
    }
  });

  test('prints the reply under "reloaded:" without a blank line', async () => {
    const h = await cli(['reload', '--control', '/tmp/x.sock'], { control: () => ({ source: 'c.yaml', released: 0, applied: [] }) });
    expect(h.out).toBe('reloaded:\n  source: c.yaml\n  released: 0\n  applied: -\n');
  });
});

describe('cli/help policy-server', () => {
  test('names every key of the serve: section, which no other help or reference documents', async () => {
    const { SERVE_KEYS } = await import('../../src/policy-server/config.ts');
    const h = await cli(['help', 'policy-server']);
    for (const k of SERVE_KEYS) expect({ k, named: h.out.replace(/\n\s*/g, ' ').includes(`${k} (`) }).toEqual({ k, named: true });
  });

  test('says --config is required, not that the embedded default is used without it', async () => {
    const h = await cli(['help', 'policy-server']);
    const config = h.out.split('Configuration flags')[1]?.replace(/\n\s*/g, ' ').match(/--config FILE (.*?) --listen/)?.[1] ?? '';
    expect(config).toContain('required');
    expect(config).not.toContain('[default: embedded default]');
  });
});

describe('cli/man', () => {
  test('the man page has the sections of dnsseal(8) when generated', async () => {
    const h = await cli(['man']);
    expect(h.code).toBe(0);
    expect(h.out).toStartWith('.TH DNSSEAL 8 "" "dnsseal 9.9.9"');
    const sections = [...h.out.matchAll(/^\.SH (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual(['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'CONFIGURATION', 'RULE PATTERNS', 'EXIT STATUS', 'FILES', 'EXAMPLES', 'SEE ALSO']);
  });

  test('the man page names every command, flag, setting and section field when generated from the tables', async () => {
    const page = (await cli(['man'])).out;
    const config = page.slice(page.indexOf('.SH CONFIGURATION'), page.indexOf('.SH RULE PATTERNS'));
    for (const c of ALL) expect({ c, found: page.includes(`\\fB${roff(COMMANDS[c]!.usage)}\\fR`) }).toEqual({ c, found: true });
    for (const c of ALL) {
      for (const f of [...(COMMAND_FLAGS[c] ?? []), ...settingFlagsOf(c)]) expect({ flag: f.name, found: page.includes(`\\fB\\-\\-${roff(f.name)}\\fR`) }).toEqual({ flag: f.name, found: true });
    }
    expect(page).toContain(`\\fB\\-\\-${CONFIG_FILE_FLAG.name}\\fR`);
    for (const s of SETTINGS) {
      expect({ key: s.key, found: config.includes(`.TP\n\\fB${s.key}\\fR\n`) }).toEqual({ key: s.key, found: true });
      const flags = s.kind === 'section' ? s.flags : s.flag ? [s.flag] : [];
      for (const f of flags) expect({ key: s.key, flag: f.name, found: config.includes(`Flag \\fB\\-\\-${roff(f.name)}\\fR`) }).toEqual({ key: s.key, flag: f.name, found: true });
      if (s.kind === 'section') {
        const sec = config.slice(config.indexOf(`.SS ${s.key}\n`));
        expect(sec.length).toBeLessThan(config.length);
        for (const field of s.fields) expect({ section: s.key, field: field.key, found: sec.includes(`.TP\n\\fB${field.key}\\fR (`) }).toEqual({ section: s.key, field: field.key, found: true });
      }
    }
  });

  const groff = Bun.which('groff');
  if (!groff) console.log('cli/man: rendering check skipped — no groff (apt: groff-base)');
  test('the man page shows markdown emphasis as troff fonts, never as literal asterisks', async () => {
    const page = (await cli(['man'])).out;
    expect(page.match(/(^|[\s(])\*{1,2}[A-Za-z][^*\n]*?\*{1,2}(?=[\s).,;:]|$)/gm) ?? []).toEqual([]);
    expect(page).toContain('\\fIforwarding\\fR rule');
    expect(page).toContain('\\fB*.corp.example\\fR');
  });

  test.skipIf(!groff)('the man page renders without a troff warning when groff reads it', async () => {
    const page = (await cli(['man'])).out;
    const r = Bun.spawnSync([groff!, '-man', '-ww', '-z'], { stdin: new TextEncoder().encode(page), stderr: 'pipe' });
    expect(r.stderr.toString()).toBe('');
    expect(r.exitCode).toBe(0);
  });
});
