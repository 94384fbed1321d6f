/**
 * A reload's config read in a worker (issue 12: the new policy is built off the hot path): the
 * config that comes back is the one `dnsseal run` would load (rules files packed, matchers
 * built, warnings passed on), an invalid file is refused with its file:line, and a daemon
 * reloading through it protects by the new rules while its queries keep being answered.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfig, type Problem } from '../../src/config/check.ts';
import { fileDeps } from '../../src/config/load.ts';
import { builtMatchers, offThreadConfig } from '../../src/daemon/off-thread-config.ts';
import { sameRules } from '../../src/policy/rule-list.ts';
import { Policy } from '../../src/policy/policy.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ask, freePort, QueryFlow, reloadLab, type ReloadLab } from './reload-lab.ts';

const RULES = 20_000;

describe('daemon/off-thread-config', () => {
  let dir: string;
  let file: string;
  let rules: string;
  const write = (extra: string[], port = 5399, more = '') => {
    writeFileSync(rules, [...Array.from({ length: RULES }, (_, i) => (i % 2 ? `*.d${i}.example` : `www.d${i}.example`)), ...extra, ''].join('\n'));
    writeFileSync(
      file,
      [`listen: [127.0.0.1:${port}]`, 'upstreams: { default: 127.0.0.1:9 }', 'datapath: fake', 'channels:', '  hub: { kind: tunnel, gateway: 192.0.2.1 }', 'tables:', '  default:', `    - rules_file: ${rules}`, '      channel: hub', more, ''].join('\n'),
    );
  };
  const values = () => new Map([['config', [file]]]);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-otc-'));
    file = join(dir, 'dnsseal.yaml');
    rules = join(dir, 'big.rules');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('gives the config the check gives, with the matchers built, when read in the worker', async () => {
    write(['*.corp.test']);
    const warnings: Problem[][] = [];
    const cfg = await offThreadConfig(values(), { log: silentLogger, maxShadowRules: 100_000, onWarnings: (w) => void warnings.push(w) })();
    const here = checkConfig(values(), fileDeps, { maxShadowRules: 100_000 });
    expect(here.config).toBeDefined();
    const { tables, ...rest } = cfg;
    const { tables: hereTables, ...hereRest } = here.config!;
    expect(rest).toEqual(hereRest);
    expect(tables.map((t) => [t.id, t.group, t.rules.length])).toEqual([['default', 0, RULES + 1]]);
    expect(sameRules(tables[0]!.rules, hereTables[0]!.rules)).toBe(true);
    expect(warnings).toEqual([here.warnings]);
    // the matchers came along, and decide as a policy built here does
    const built = builtMatchers(cfg.tables);
    expect(built?.has('default')).toBe(true);
    const there = Policy.fromConfig(cfg, built);
    const fresh = Policy.fromConfig(here.config!);
    for (const name of ['www.d0.example', 'x.d1.example', 'www.d1.example', 'a.corp.test', 'nope.example']) {
      expect(there.decide('', [name]).channel?.name ?? null).toBe(fresh.decide('', [name]).channel?.name ?? null);
    }
    expect(there.decide('', ['a.corp.test']).rule?.source).toBe(`${rules}:${RULES + 1}`);
  });

  test('rejects with the problem at its file:line when the new file is invalid', async () => {
    write(['a.*.b']);
    const err = await offThreadConfig(values(), { log: silentLogger, maxShadowRules: 100_000 })().then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain(`${rules}:${RULES + 1}`);
    expect(err?.message).toContain('"*" must be a whole label');
  });

  test('protects by the new rules, and answers throughout, when a daemon reloads them through the worker', async () => {
    write(['*.corp.test']);
    const port = await freePort();
    const text = (extra: string) => (upstream: number, control: string) =>
      [`listen: [127.0.0.1:${port}]`, `upstreams: { default: 127.0.0.1:${upstream} }`, 'datapath: fake', `control: ${control}`, 'channels:', '  hub: { kind: tunnel, gateway: 192.0.2.1 }', 'tables:', '  default:', `    - rules_file: ${rules}`, '      channel: hub', extra, ''].join('\n');
    const lab: ReloadLab = await reloadLab(text(''), { offThread: true });
    try {
      expect((await ask(port, 'app.lab.test')).rcode).toBe('NOERROR');
      expect(lab.d.info.registry.list().some((e) => e.names.includes('app.lab.test'))).toBe(false);
      const flow = new QueryFlow(port, ['app.corp.test', 'www.public.test']);
      write(['*.corp.test', '*.lab.test']);
      expect(await lab.reload()).toMatchObject({ applied: ['tables'], rules: RULES + 2 });
      const f = await flow.stop();
      expect(f.answered).toBe(f.sent);
      await ask(port, 'app.lab.test');
      expect(lab.d.info.registry.list().find((e) => e.names.includes('app.lab.test'))?.channel).toBe('hub');
      // the same file again: nothing to apply (the packed files compare equal)
      expect(await lab.reload()).toMatchObject({ applied: [] });
    } finally {
      await lab.stop();
    }
  });
});
