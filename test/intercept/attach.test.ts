/** Where the NAT goes (on the shared tc library), on the in-memory kernel. */
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { tcProgram } from '../../src/datapath/ebpf/attach.ts';
import { attachTc } from '../../src/datapath/ebpf/lib/tc-attach.ts';
import { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { ICPT_TC_PREF, detachInterceptClsact, interceptWatcher } from '../../src/intercept/attach.ts';
import { ICPT_PROGS } from '../../src/intercept/ebpf-loader.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';
import { FakeTcKernel } from '../datapath/ebpf/lib/fake-tc-kernel.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const root = mkdtempSync(`${tmpdir()}/dnsseal-icpt-attach-`);
  dirs.push(root);
  const paths = new PinPaths(root);
  for (const d of [paths.progs, paths.links]) mkdirSync(d);
  const k = new FakeTcKernel(root);
  for (const p of [...Object.values(ICPT_PROGS), 'dnsseal_lan_in']) k.pinProg(p, paths.prog(p));
  return { k, paths };
}

describe('intercept/attach', () => {
  test('puts the NAT on both hooks of the LAN interface with dot-free link pins when tcx is there', () => {
    const { k, paths } = setup();
    k.addInterface('lan.30');
    expect(interceptWatcher(k, paths, ['lan.30'], silentLogger).sync()).toEqual([]);
    expect(k.attached('lan.30', 'ingress')).toEqual(['dnsseal_nat_in']);
    expect(k.attached('lan.30', 'egress')).toEqual(['dnsseal_nat_out']);
    expect(existsSync(paths.link('icpt_in_lan:30'))).toBe(true);
    expect(existsSync(paths.link('icpt_out_lan:30'))).toBe(true);
  });

  test('runs before the LAN marker and is removed alone by detachInterceptClsact when on clsact', () => {
    const { k, paths } = setup();
    k.addInterface('lan0');
    interceptWatcher(k, paths, ['lan0'], silentLogger, 'clsact').sync();
    attachTc(k, tcProgram(paths, 'lan'), 'lan0', { mode: 'clsact', component: 'datapath' });
    expect(k.attached('lan0', 'ingress')).toEqual(['dnsseal_nat_in', 'dnsseal_lan_in']);
    expect(k.commands.some((c) => c.includes('filter') && c.includes(String(ICPT_TC_PREF)))).toBe(true);
    expect(detachInterceptClsact(k)).toEqual(['tc filter lan0 ingress (intercept)', 'tc filter lan0 egress (intercept)']);
    expect(k.attached('lan0', 'ingress')).toEqual(['dnsseal_lan_in']);
    expect(k.attached('lan0', 'egress')).toEqual([]);
  });

  test('logs an attach that keeps failing once, not on every poll', () => {
    const { k, paths } = setup();
    k.addInterface('lan0');
    rmSync(paths.prog(ICPT_PROGS.out)); // not loaded
    const lines: string[] = [];
    const w = interceptWatcher(k, paths, ['lan0'], createLogger({ write: (l) => lines.push(l) }));
    for (let i = 0; i < 3; i++) expect(w.sync()).toEqual(['lan0']);
    const failed = lines.filter((l) => l.includes('intercept: attaching tc program failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain('program dnsseal_nat_out is not pinned under');
  });
});
