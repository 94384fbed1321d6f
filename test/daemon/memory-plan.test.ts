/**
 * `memory_plan` for real: `dnsseal run` spawned (from source, and as the compiled executable
 * when `make build` made one) starts itself again as the same process with the JavaScriptCore
 * option in its environment — what the kernel shows in /proc/PID/environ is what JSC read at
 * start — and serves; `0` and an operator's own value leave the environment alone.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../src/control/client.ts';
import { JSC_RAM_VAR, REEXEC_MARK } from '../../src/daemon/heap-plan.ts';
import { freePort } from './reload-lab.ts';

const REPO = join(import.meta.dir, '../..');
const MAIN = join(REPO, 'src/main.ts');
const DIST = join(REPO, 'dist/dnsseal');
const dir = mkdtempSync(join(tmpdir(), 'dnsseal-memory-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const commands: [string, string[]][] = [['bun src/main.ts', [process.execPath, MAIN]]];
if (existsSync(DIST)) commands.push(['dist/dnsseal', [DIST]]);
else console.log('memory-plan: dist/dnsseal is not built (make build): only the source is tried');

let n = 0;
/** Starts `run` with `flags` and `env`; resolves its pid, its status's pid and its environment once it answers `status`. */
async function runDaemon(cmd: string[], flags: string[], env: Record<string, string> = {}) {
  const control = join(dir, `c${n++}.sock`);
  const config = join(dir, `d${n}.yaml`);
  writeFileSync(config, ['mode: host', `listen: [127.0.0.1:${await freePort()}]`, 'upstreams: { default: 127.0.0.1:9 }', 'datapath: none', `control: ${control}`, 'log_level: warn', ''].join('\n'));
  const base = { ...(process.env as Record<string, string>) };
  delete base[JSC_RAM_VAR];
  delete base[REEXEC_MARK];
  const p = Bun.spawn([...cmd, 'run', '--config', config, ...flags], { env: { ...base, ...env }, stdout: 'pipe', stderr: 'pipe' });
  try {
    let status: { pid?: number } | undefined;
    for (const end = Date.now() + 30_000; status === undefined; ) {
      if (p.exitCode !== null) throw new Error(`the daemon exited ${p.exitCode}: ${await new Response(p.stderr).text()}`);
      if (Date.now() > end) throw new Error('the daemon did not answer status within 30 s');
      status = (await controlRequest(control, { cmd: 'status' }, { timeoutMs: 1000 }).catch(() => undefined)) as { pid?: number } | undefined;
      if (status === undefined) await Bun.sleep(50);
    }
    const environ = readFileSync(`/proc/${p.pid}/environ`, 'latin1').split('\0');
    return { pid: p.pid, statusPid: status.pid, environ };
  } finally {
    p.kill('SIGTERM');
    await p.exited;
  }
}

describe('daemon/memory-plan', () => {
  test.each(commands)('%s serves as the same process with the JSC RAM size of memory_plan in its environment when run with --memory-plan 48', async (_what, cmd) => {
    const r = await runDaemon(cmd, ['--memory-plan', '48']);
    expect(r.statusPid).toBe(r.pid);
    expect(r.environ).toContain(`${JSC_RAM_VAR}=${48 * 1024 * 1024}`);
    expect(r.environ).toContain(`${REEXEC_MARK}=48`);
  });

  test.each(commands)('%s keeps its environment when run with --memory-plan 0', async (_what, cmd) => {
    const r = await runDaemon(cmd, ['--memory-plan', '0']);
    expect(r.statusPid).toBe(r.pid);
    expect(r.environ.filter((e) => e.startsWith(JSC_RAM_VAR) || e.startsWith(REEXEC_MARK))).toEqual([]);
  });

  test('keeps the operator\'s own JSC RAM size when the environment has one', async () => {
    const r = await runDaemon(commands[0]![1], ['--memory-plan', '48'], { [JSC_RAM_VAR]: '300000000' });
    expect(r.environ).toContain(`${JSC_RAM_VAR}=300000000`);
    expect(r.environ.some((e) => e.startsWith(REEXEC_MARK))).toBe(false);
  });
});
