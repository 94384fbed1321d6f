/**
 * The shared case suite of the tc library (src/datapath/ebpf/lib): run against FakeTcKernel
 * (tc-contract-fake.test.ts) and against the real kernel in a network namespace
 * (tc-contract-real.test.ts, through fixtures/tc-contract-runner.ts), so the fake cannot drift.
 * Cases are plain functions that throw (node:assert): the real run happens in a child process
 * inside the namespace, outside the test runner.
 */
import { deepStrictEqual, equal, ok } from 'node:assert';
import { existsSync, rmSync } from 'node:fs';
import { linkIfindex, pruneDefunctLink } from '../../../../src/datapath/ebpf/lib/link-pin.ts';
import { allInterfacesExcept, namedInterfaces } from '../../../../src/datapath/ebpf/lib/interfaces.ts';
import { attachTc, detachClsact, type TcDir, type TcKernel, type TcMode, type TcProgram, tcLinkPin } from '../../../../src/datapath/ebpf/lib/tc-attach.ts';
import { TcWatcher } from '../../../../src/datapath/ebpf/lib/tc-watcher.ts';
import { silentLogger } from '../../../../src/util/log.ts';

/** Two tc programs every harness has pinned: the main object's LAN marker and WAN guard. */
export const PROG_IN = 'dnsseal_lan_in';
export const PROG_OUT = 'dnsseal_wan_out';

export interface TcHarness {
  kernel: TcKernel;
  /** Where the cases pin links (exists, empty at the start of each case). */
  linksDir: string;
  progPin(name: typeof PROG_IN | typeof PROG_OUT): string;
  addInterface(name: string): void;
  delInterface(name: string): void;
  /** Program names on a hook: tcx links, then clsact filters by pref. */
  attached(ifname: string, dir: TcDir): string[];
}

export interface TcCase {
  name: string;
  run(h: TcHarness): void | Promise<void>;
}

/** Polls `fn` until it holds (a link released by the kernel goes after an RCU grace period). */
async function until(fn: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

const PREF = 0x5e4f;

function program(h: TcHarness, name: typeof PROG_IN | typeof PROG_OUT, prefix: string, pref = PREF): TcProgram {
  return { name, pin: h.progPin(name), dir: name === PROG_IN ? 'ingress' : 'egress', linksDir: h.linksDir, linkPrefix: prefix, pref, handle: 1 };
}

function attach(h: TcHarness, p: TcProgram, ifname: string, mode: TcMode) {
  return attachTc(h.kernel, p, ifname, { mode, component: 'test' });
}

export const TC_CASES: TcCase[] = [
  {
    name: 'attaching twice leaves one program on the hook when the pinned tcx link is updated',
    run(h) {
      h.addInterface('ct0');
      const p = program(h, PROG_OUT, 'ct_out');
      const a = attach(h, p, 'ct0', 'tcx');
      const b = attach(h, p, 'ct0', 'tcx');
      deepStrictEqual([a.state === 'attached' && a.mode === 'tcx' && a.how, b.state === 'attached' && b.mode === 'tcx' && b.how], ['created', 'updated']);
      deepStrictEqual(h.attached('ct0', 'egress'), [PROG_OUT]);
      deepStrictEqual(h.attached('ct0', 'ingress'), []);
      ok(existsSync(`${h.linksDir}/ct_out_ct0`), 'link pin');
    },
  },
  {
    name: 'a dotted interface name gets a link pin without the dot when attached',
    run(h) {
      h.addInterface('ct0.5');
      const p = program(h, PROG_IN, 'ct_in');
      attach(h, p, 'ct0.5', 'tcx');
      equal(tcLinkPin(p, 'ct0.5'), `${h.linksDir}/ct_in_ct0:5`);
      ok(existsSync(`${h.linksDir}/ct_in_ct0:5`), 'link pin ct_in_ct0:5');
      deepStrictEqual(h.attached('ct0.5', 'ingress'), [PROG_IN]);
    },
  },
  {
    name: 'an absent interface is reported absent and nothing is pinned when attaching',
    run(h) {
      const p = program(h, PROG_OUT, 'ct_out');
      deepStrictEqual(attach(h, p, 'ct-none', 'tcx'), { state: 'absent' });
      equal(existsSync(tcLinkPin(p, 'ct-none')), false);
    },
  },
  {
    name: 'the link of a deleted interface is defunct and its pin pruned while a live one is kept',
    run(h) {
      h.addInterface('ct1');
      h.addInterface('ct2');
      const p = program(h, PROG_OUT, 'ct_out');
      attach(h, p, 'ct1', 'tcx');
      attach(h, p, 'ct2', 'tcx');
      h.delInterface('ct1');
      equal(linkIfindex(h.kernel.bpf, tcLinkPin(p, 'ct1')), 0);
      equal(pruneDefunctLink(h.kernel.bpf, tcLinkPin(p, 'ct1')), true);
      equal(existsSync(tcLinkPin(p, 'ct1')), false);
      equal(pruneDefunctLink(h.kernel.bpf, tcLinkPin(p, 'ct2')), false);
      deepStrictEqual(h.attached('ct2', 'egress'), [PROG_OUT]);
    },
  },
  {
    name: 'a re-created interface gets a new link when attached again',
    run(h) {
      h.addInterface('ct3');
      const p = program(h, PROG_OUT, 'ct_out');
      attach(h, p, 'ct3', 'tcx');
      h.delInterface('ct3');
      h.addInterface('ct3');
      deepStrictEqual(h.attached('ct3', 'egress'), []);
      const r = attach(h, p, 'ct3', 'tcx');
      equal(r.state === 'attached' && r.mode === 'tcx' && r.how, 'created');
      deepStrictEqual(h.attached('ct3', 'egress'), [PROG_OUT]);
    },
  },
  {
    name: 'clsact: attaching twice leaves one filter and detachClsact removes only the matching ones',
    run(h) {
      h.addInterface('ct4');
      const mine = program(h, PROG_IN, 'ct_in', PREF);
      const other = program(h, PROG_OUT, 'ct_out', PREF + 1);
      attach(h, mine, 'ct4', 'clsact');
      attach(h, mine, 'ct4', 'clsact');
      attach(h, other, 'ct4', 'clsact');
      deepStrictEqual(h.attached('ct4', 'ingress'), [PROG_IN]);
      deepStrictEqual(h.attached('ct4', 'egress'), [PROG_OUT]);
      deepStrictEqual(detachClsact(h.kernel, { pref: PREF, programs: /dnsseal_lan_in/, label: 'test' }), ['tc filter ct4 ingress (test)']);
      deepStrictEqual(h.attached('ct4', 'ingress'), []);
      deepStrictEqual(h.attached('ct4', 'egress'), [PROG_OUT]);
      deepStrictEqual(detachClsact(h.kernel, { pref: PREF + 1, programs: /dnsseal_lan_in/ }), []);
      deepStrictEqual(detachClsact(h.kernel, { pref: PREF + 1, programs: /dnsseal_wan_out/ }), ['tc filter ct4 egress']);
    },
  },
  {
    name: 'a watcher over all interfaces except some covers every other one, a new one on the next pass, never lo',
    run(h) {
      h.addInterface('cw0');
      h.addInterface('cw1');
      const progs = [program(h, PROG_OUT, 'cw_out'), program(h, PROG_IN, 'cw_in')];
      const w = new TcWatcher(h.kernel, [{ name: 'all', ifaces: allInterfacesExcept(['lo', 'cw1']), progs }], silentLogger, { component: 'test', mode: 'tcx' });
      deepStrictEqual(w.sync(), []);
      const on = (dev: string) => [...h.attached(dev, 'egress'), ...h.attached(dev, 'ingress')];
      deepStrictEqual(on('cw0'), [PROG_OUT, PROG_IN]);
      deepStrictEqual(on('cw1'), []);
      deepStrictEqual(on('lo'), []);
      h.addInterface('cw2.7');
      w.sync();
      deepStrictEqual(on('cw2.7'), [PROG_OUT, PROG_IN]);
      h.delInterface('cw0');
      w.sync();
      equal(existsSync(tcLinkPin(progs[0]!, 'cw0')), false, 'the pin of a gone interface is removed');
      deepStrictEqual(on('lo'), []);
    },
  },
  {
    name: 'a watcher re-attaches a tcx link removed behind its back on the next pass',
    async run(h) {
      h.addInterface('cr0');
      const p = program(h, PROG_OUT, 'cr_out');
      const w = new TcWatcher(h.kernel, [{ name: 'wan', ifaces: namedInterfaces(['cr0', 'cr-later']), progs: [p] }], silentLogger, { component: 'test' });
      deepStrictEqual(w.sync(), ['cr-later']);
      equal(w.tcMode, 'tcx');
      rmSync(tcLinkPin(p, 'cr0'));
      await until(() => h.attached('cr0', 'egress').length === 0, 'the unpinned link to be released');
      w.sync();
      deepStrictEqual(h.attached('cr0', 'egress'), [PROG_OUT]);
    },
  },
];
