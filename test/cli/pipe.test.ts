/**
 * Output that is always complete: the real entry point, spawned, asks a control server in this
 * process for 50,000 entries (one of them held by 20,000 names) and writes them into a pipe —
 * through `wc -l`, `head` and a JSON parser — and into a file. Every line must arrive, whole.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlHandlers } from '../../src/control/handlers.ts';
import { startControlServer, type ControlServer } from '../../src/control/server.ts';
import type { Registry } from '../../src/registry/registry.ts';
import type { RegistryEntry } from '../../src/registry/types.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

const MAIN = join(import.meta.dir, '../../src/main.ts');
const ENTRIES = 50_000;
const CDN_NAMES = 20_000;
const dir = mkdtempSync(join(tmpdir(), 'dnsseal-pipe-'));
const sock = join(dir, 'control.sock');
let server: ControlServer;

/** 10.0.0.0 + i, the first one held by CDN_NAMES names. */
function entries(): RegistryEntry[] {
  const out: RegistryEntry[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const addr = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const names = i === 0 ? Array.from({ length: CDN_NAMES }, (_, n) => `edge${n}.cdn.example`) : [`host${i}.corp.example`];
    out.push({ group: 0, addr, channel: 'hub', names, expiresMs: 2_000_000, static: false });
  }
  return out;
}

beforeAll(async () => {
  const list = entries();
  const registry = {
    list: () => list,
    stats: () => ({ datapath: 'fake', entries: list.length, statics: 0, blocked: 0, retired: 0, byChannel: { hub: list.length } }),
    withdraw: () => [],
    releaseNames: () => ({ names: 0, removed: [] }),
  } as unknown as Pick<Registry, 'list' | 'stats' | 'withdraw' | 'releaseNames'>;
  server = await startControlServer(sock, createControlHandlers({ registry, clock: new FakeClock() }), silentLogger);
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a shell pipeline (asynchronously: the control server answers from this process). */
async function sh(script: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(['bash', '-o', 'pipefail', '-c', script], {
    stdout: 'pipe',
    stderr: 'pipe',
    env: { ...process.env, DNSSEAL: `${process.execPath} ${MAIN}`, SOCK: sock, DIR: dir },
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe('cli output into a pipe', () => {
  test('list writes every row into a pipe when the output is far larger than the pipe', async () => {
    const r = await sh('$DNSSEAL list --control "$SOCK" | wc -l');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // header, the rows, and the two lines of the "… +N" legend
    expect(Number(r.out.trim())).toBe(1 + ENTRIES + 2);
  });

  test('list ends with its last row, whole, when it goes through a pipe', async () => {
    const r = await sh('$DNSSEAL list --control "$SOCK" | tail -n 3 | head -n 1');
    expect(r.out).toMatch(/^default +10\.0\.195\.79 +hub +\S+ +- +host49999\.corp\.example\n$/);
  });

  test('list --json parses and carries every name when piped into a JSON reader', async () => {
    const reader = `${process.execPath} -e 'const rows = JSON.parse(await Bun.stdin.text()); console.log(rows.length, rows[0].names.length, rows.at(-1).address)'`;
    const r = await sh(`$DNSSEAL list --json --control "$SOCK" | ${reader}`);
    expect(r.err).toBe('');
    expect(r.out).toBe(`${ENTRIES} ${CDN_NAMES} 10.0.195.79\n`);
  });

  test('list stops quietly with exit 0 when the reader closes the pipe early', async () => {
    const r = await sh('$DNSSEAL list --control "$SOCK" | head -n 3');
    expect(r.out.split('\n').length).toBe(4);
    expect(r.out).toStartWith('TABLE    ADDRESS');
    expect(r.out).toContain('edge0.cdn.example, edge1.cdn.example');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  test('list --json writes the whole document when the output is a file', async () => {
    const r = await sh('$DNSSEAL list --json --control "$SOCK" > "$DIR/list.json"');
    expect(r.code).toBe(0);
    const rows = JSON.parse(readFileSync(join(dir, 'list.json'), 'utf8')) as unknown[];
    expect(rows.length).toBe(ENTRIES);
  });

  test('a command whose output cannot be written (a full disk) says so and exits 2, not 0', async () => {
    const r = await sh('$DNSSEAL config-reference > /dev/full');
    expect(r.err).toContain('dnsseal: cannot write to stdout (ENOSPC');
    expect(r.err).toContain('the output is incomplete');
    expect(r.code).toBe(2);
  });
});
