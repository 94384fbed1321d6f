/**
 * `memory_plan` (src/daemon/heap-plan.ts, reexec.ts): the argument vector and environment the
 * daemon starts itself again with, and when it does not.
 */
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { heapPlan, JSC_RAM_VAR, parseCmdline, REEXEC_MARK } from '../../src/daemon/heap-plan.ts';
import { applyMemoryPlan, realReexecDeps, type ReexecDeps } from '../../src/daemon/reexec.ts';
import { createLogger } from '../../src/util/log.ts';

const ARGV = ['/usr/bin/dnsseal', 'run', '--config', '/etc/dnsseal/dnsseal.yaml'];

describe('daemon/heap-plan', () => {
  test('starts again with the same arguments and the environment plus the JSC option when nothing set it', () => {
    const plan = heapPlan({ planMb: 96, env: { PATH: '/usr/bin', LANG: 'C.UTF-8' }, argv: ARGV });
    expect(plan).toEqual({
      kind: 'exec',
      argv: ARGV,
      env: ['PATH=/usr/bin', 'LANG=C.UTF-8', `${JSC_RAM_VAR}=${96 * 1024 * 1024}`, `${REEXEC_MARK}=96`],
      ramBytes: 96 * 1024 * 1024,
    });
  });

  test('keeps the arguments of bun running the source when the process is `bun src/main.ts run`', () => {
    const argv = ['/opt/bun', '--smol', 'src/main.ts', 'run', '--memory-plan', '64'];
    const plan = heapPlan({ planMb: 64, env: {}, argv });
    expect(plan.kind === 'exec' && plan.argv).toEqual(argv);
  });

  test.each([
    ['the plan is 0', { planMb: 0, env: {}, argv: ARGV }, { kind: 'keep', why: 'off' }],
    ['the process was started again with it', { planMb: 96, env: { [JSC_RAM_VAR]: '100663296', [REEXEC_MARK]: '96' }, argv: ARGV }, { kind: 'keep', why: 'applied', ramBytes: 100663296 }],
    ['the operator set the option', { planMb: 96, env: { [JSC_RAM_VAR]: '500000000' }, argv: ARGV }, { kind: 'keep', why: 'operator', ramBytes: 500000000 }],
    ['the arguments are unknown', { planMb: 96, env: {}, argv: undefined }, { kind: 'keep', why: 'no-argv' }],
    ['the arguments are empty', { planMb: 96, env: {}, argv: [] }, { kind: 'keep', why: 'no-argv' }],
    ['the machine has no more RAM than the plan', { planMb: 256, env: {}, argv: ARGV, machineMb: 256 }, { kind: 'keep', why: 'machine' }],
  ])('does not start again when %s', (_what, input, want) => {
    expect(heapPlan(input)).toEqual(want as ReturnType<typeof heapPlan>);
  });

  test('starts again when the machine has more RAM than the plan', () => {
    expect(heapPlan({ planMb: 256, env: {}, argv: ARGV, machineMb: 257 }).kind).toBe('exec');
  });

  test('drops a stale mark from the environment it passes on', () => {
    const plan = heapPlan({ planMb: 32, env: { [REEXEC_MARK]: '7', HOME: '/root' }, argv: ARGV });
    expect(plan.kind === 'exec' && plan.env).toEqual(['HOME=/root', `${JSC_RAM_VAR}=${32 * 1024 * 1024}`, `${REEXEC_MARK}=32`]);
  });

  test('reads /proc/self/cmdline bytes as the argument vector, any byte kept, when given NUL-terminated strings', () => {
    const bytes = Uint8Array.from([...Buffer.from('dnsseal\0run\0--config\0'), 0xff, 0xfe, 0]);
    const argv = parseCmdline(bytes);
    expect(argv.slice(0, 3)).toEqual(['dnsseal', 'run', '--config']);
    expect([...Buffer.from(argv[3]!, 'latin1')]).toEqual([0xff, 0xfe]);
    expect(parseCmdline(new Uint8Array())).toEqual([]);
  });
});

describe('daemon/reexec', () => {
  function deps(probeOk: boolean) {
    const calls: { probe: Record<string, string>[]; exec: [string, readonly string[], readonly string[]][] } = { probe: [], exec: [] };
    const d: ReexecDeps = {
      probe: (env) => (calls.probe.push(env), probeOk),
      execve: (path, argv, env) => (calls.exec.push([path, argv, env]), 2 /* ENOENT */),
    };
    return { d, calls };
  }
  function logger() {
    const lines: string[] = [];
    return { log: createLogger({ level: 'debug', write: (l) => lines.push(l) }), lines };
  }

  test('tries the option in a child, then execs /proc/self/exe with it when this Bun takes it', () => {
    const { d, calls } = deps(true);
    const { log, lines } = logger();
    const plan = applyMemoryPlan(96, log, d, { PATH: '/usr/bin' });
    expect(calls.probe).toEqual([{ PATH: '/usr/bin', [JSC_RAM_VAR]: String(96 * 1024 * 1024) }]);
    expect(calls.exec).toHaveLength(1);
    const [path, argv, env] = calls.exec[0]!;
    expect(path).toBe('/proc/self/exe');
    expect(argv).toEqual(parseCmdline(readFileSync('/proc/self/cmdline')));
    expect(env).toContain(`${JSC_RAM_VAR}=${96 * 1024 * 1024}`);
    // the fake execve "failed": the daemon goes on with the engine's default, and says so
    expect(plan).toEqual({ kind: 'keep', why: 'off' });
    expect(lines.join('\n')).toContain('execve failed');
  });

  test('warns and never execs when this Bun refuses the option', () => {
    const { d, calls } = deps(false);
    const { log, lines } = logger();
    expect(applyMemoryPlan(96, log, d, {})).toEqual({ kind: 'keep', why: 'off' });
    expect(calls.exec).toEqual([]);
    expect(lines.join('\n')).toContain(`this Bun does not take ${JSC_RAM_VAR}`);
  });

  test('neither probes nor execs when the operator set the option', () => {
    const { d, calls } = deps(true);
    const { log } = logger();
    expect(applyMemoryPlan(96, log, d, { [JSC_RAM_VAR]: '1000000000' }).kind).toBe('keep');
    expect(calls).toEqual({ probe: [], exec: [] });
  });

  test('the real probe accepts the option with this Bun and refuses an option JSC does not have', () => {
    // the probe runs /proc/self/exe: here, the bun running this test
    expect(realReexecDeps.probe({ ...(process.env as Record<string, string>), [JSC_RAM_VAR]: '100000000' })).toBe(true);
    expect(realReexecDeps.probe({ ...(process.env as Record<string, string>), BUN_JSC_dnssealNoSuchOption: '1' })).toBe(false);
  });
});
