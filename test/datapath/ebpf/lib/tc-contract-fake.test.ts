/** The tc library's shared suite against the in-memory kernel (no root needed). */
import { afterAll, describe, test } from 'bun:test';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { FakeTcKernel } from './fake-tc-kernel.ts';
import { PROG_IN, PROG_OUT, TC_CASES, type TcHarness } from './tc-contract.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function fakeHarness(): TcHarness {
  const dir = mkdtempSync(`${tmpdir()}/dnsseal-tc-fake-`);
  dirs.push(dir);
  const k = new FakeTcKernel(dir);
  mkdirSync(`${dir}/progs`);
  mkdirSync(`${dir}/links`);
  for (const p of [PROG_IN, PROG_OUT]) k.pinProg(p, `${dir}/progs/${p}`);
  return {
    kernel: k,
    linksDir: `${dir}/links`,
    progPin: (name) => `${dir}/progs/${name}`,
    addInterface: (name) => void k.addInterface(name),
    delInterface: (name) => k.delInterface(name),
    attached: (ifname, d) => k.attached(ifname, d),
  };
}

describe('datapath/ebpf/lib tc contract: fake', () => {
  test.each(TC_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await c.run(fakeHarness());
  });
});
