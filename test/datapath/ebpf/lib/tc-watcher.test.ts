/** TcWatcher on the in-memory kernel: what the shared contract cannot provoke on a real one. */
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { allInterfacesExcept, namedInterfaces } from '../../../../src/datapath/ebpf/lib/interfaces.ts';
import { tcLinkPin, type TcProgram } from '../../../../src/datapath/ebpf/lib/tc-attach.ts';
import { TcWatcher, type TcRule } from '../../../../src/datapath/ebpf/lib/tc-watcher.ts';
import { createLogger } from '../../../../src/util/log.ts';
import { FakeTcKernel } from './fake-tc-kernel.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(`${tmpdir()}/dnsseal-tcw-`);
  dirs.push(dir);
  mkdirSync(`${dir}/progs`);
  mkdirSync(`${dir}/links`);
  const k = new FakeTcKernel(dir);
  const prog = (name: string, dir_: 'ingress' | 'egress', prefix: string, pref = 0x5e4f): TcProgram => {
    k.pinProg(name, `${dir}/progs/${name}`);
    return { name, pin: `${dir}/progs/${name}`, dir: dir_, linksDir: `${dir}/links`, linkPrefix: prefix, pref, handle: 1 };
  };
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });
  return { k, prog, lines, log, dir };
}

describe('datapath/ebpf/lib/tc-watcher', () => {
  test('falls back to clsact and stops probing tcx when the kernel has no tcx', () => {
    const { k, prog, log } = setup();
    k.noTcx = true;
    k.addInterface('e0');
    k.addInterface('e1');
    const out = prog('dnsseal_wan_out', 'egress', 'tcx_wan');
    const w = new TcWatcher(k, [{ name: 'wan', ifaces: namedInterfaces(['e0', 'e1']), progs: [out] }], log, { component: 'test' });
    expect(w.sync()).toEqual([]);
    expect(w.tcMode).toBe('clsact');
    expect(k.tcxAttempts).toBe(1);
    expect(k.attached('e0', 'egress')).toEqual(['dnsseal_wan_out']);
    expect(k.attached('e1', 'egress')).toEqual(['dnsseal_wan_out']);
    expect(existsSync(tcLinkPin(out, 'e0'))).toBe(false);
  });

  test('reports the error once per distinct message and the interface absent when tcx is forced without tcx', () => {
    const { k, prog, lines, log } = setup();
    k.noTcx = true;
    k.addInterface('e0');
    const w = new TcWatcher(k, [{ name: 'nat', ifaces: namedInterfaces(['e0']), progs: [prog('dnsseal_nat_in', 'ingress', 'icpt_in')] }], log, { component: 'intercept', mode: 'tcx' });
    for (let i = 0; i < 4; i++) expect(w.sync()).toEqual(['e0']);
    const failed = lines.filter((l) => l.includes('intercept: attaching tc program failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain('EINVAL');
    k.noTcx = false;
    expect(w.sync()).toEqual([]);
    expect(lines.filter((l) => l.includes('intercept: tc program attached after earlier failures'))).toHaveLength(1);
  });

  test('attaches every program of a rule in order and calls onAttached once per attach when an interface appears', () => {
    const { k, prog, log } = setup();
    const attached: string[] = [];
    const rule: TcRule = {
      name: 'nat',
      ifaces: namedInterfaces(['lan0']),
      progs: [prog('dnsseal_nat_in', 'ingress', 'icpt_in'), prog('dnsseal_nat_out', 'egress', 'icpt_out')],
      onAttached: (n) => attached.push(n),
    };
    const w = new TcWatcher(k, [rule], log, { component: 'intercept' });
    expect(w.sync()).toEqual(['lan0']);
    k.addInterface('lan0');
    expect(w.sync()).toEqual([]);
    w.sync();
    expect(attached).toEqual(['lan0']);
    expect(k.attached('lan0', 'ingress')).toEqual(['dnsseal_nat_in']);
    expect(k.attached('lan0', 'egress')).toEqual(['dnsseal_nat_out']);
  });

  test('asks a named list again on every pass when it is a function', () => {
    const { k, prog, log } = setup();
    k.addInterface('a0');
    k.addInterface('b0');
    let names = ['a0'];
    const w = new TcWatcher(k, [{ name: 'wan', ifaces: namedInterfaces(() => names), progs: [prog('dnsseal_wan_out', 'egress', 'tcx_wan')] }], log, { component: 'test' });
    w.sync();
    expect(k.attached('b0', 'egress')).toEqual([]);
    names = ['a0', 'b0'];
    w.sync();
    expect(k.attached('b0', 'egress')).toEqual(['dnsseal_wan_out']);
  });

  test('removes on the first pass the defunct links of its prefixes a previous run left, and nothing else', () => {
    const { k, prog, log, dir } = setup();
    const out = prog('dnsseal_wan_out', 'egress', 'tcx_wan');
    const other = { ...out, linkPrefix: 'other' };
    k.addInterface('old0');
    k.addInterface('live0');
    const before = new TcWatcher(k, [{ name: 'wan', ifaces: namedInterfaces(['old0', 'live0']), progs: [out, other] }], log, { component: 'test' });
    before.sync();
    k.delInterface('old0'); // while no dnsseal runs
    const after = new TcWatcher(k, [{ name: 'wan', ifaces: namedInterfaces(['live0']), progs: [out] }], log, { component: 'test' });
    after.sync();
    expect(existsSync(`${dir}/links/tcx_wan_old0`)).toBe(false);
    expect(existsSync(`${dir}/links/tcx_wan_live0`)).toBe(true);
    expect(existsSync(`${dir}/links/other_old0`)).toBe(true); // another rule's prefix: not ours to remove
  });

  test('logs a failing interface listing once and keeps the named rules going when /proc cannot be read', () => {
    const { k, prog, lines, log } = setup();
    k.addInterface('wan0');
    k.interfaces = () => {
      throw new Error('cannot list the network interfaces');
    };
    const w = new TcWatcher(
      k,
      [
        { name: 'guard', ifaces: allInterfacesExcept(['lo']), progs: [prog('dnsseal_wan_out', 'egress', 'tcx_guard')] },
        { name: 'wan', ifaces: namedInterfaces(['wan0']), progs: [prog('dnsseal_lan_in', 'ingress', 'tcx_lan')] },
      ],
      log,
      { component: 'test' },
    );
    w.sync();
    w.sync();
    expect(lines.filter((l) => l.includes('cannot list the network interfaces'))).toHaveLength(1);
    expect(k.attached('wan0', 'ingress')).toEqual(['dnsseal_lan_in']);
  });

  test('warns when a named interface goes but only debugs when one of all-except goes', () => {
    const { k, prog, lines, log } = setup();
    k.addInterface('n0');
    k.addInterface('x0');
    const w = new TcWatcher(
      k,
      [
        { name: 'named', ifaces: namedInterfaces(['n0']), progs: [prog('dnsseal_lan_in', 'ingress', 'tcx_lan')] },
        { name: 'all', ifaces: allInterfacesExcept(['lo', 'n0']), progs: [prog('dnsseal_wan_out', 'egress', 'tcx_all')] },
      ],
      log,
      { component: 'test' },
    );
    w.sync();
    k.delInterface('n0');
    k.delInterface('x0');
    expect(w.sync()).toEqual(['n0']);
    const gone = lines.filter((l) => l.includes('interface gone'));
    expect(gone.filter((l) => l.includes('level=warn')).map((l) => /dev=(\S+)/.exec(l)?.[1])).toEqual(['n0']);
    expect(gone.filter((l) => l.includes('level=debug')).map((l) => /dev=(\S+)/.exec(l)?.[1])).toEqual(['x0']);
  });
});
