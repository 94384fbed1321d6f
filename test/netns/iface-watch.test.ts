/**
 * A WAN interface named in config that does not exist at start-up gets the leak guard when it
 * appears, and again when it is deleted and re-created (interface poll, here every 300 ms).
 * Then a watcher over every interface except some (below).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { kernelHasTcx, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { DP_HELPER as HELPER, egressOn, stopAndTearDown, waitFor } from './fixtures/dp-watch.ts';
import { bunBin, delNs, nsenter, sh } from './netns.ts';

const skip = privSkipReason() ?? (sh(['which', 'nsenter']).code !== 0 ? 'nsenter missing' : undefined);
if (skip) console.log(`netns interface watch: skipping: ${skip}`);
/** What the query reports for our guard: the tcx program name, or one clsact filter (< 6.6). */
const GUARD = kernelHasTcx() ? ['dnsseal_wan_out'] : ['clsact'];
/** Many polls (300 ms), and every check spawns a helper: generous for a loaded machine. */
const POLL_BOUND_MS = 10_000;

(skip ? describe.skip : describe)('netns interface watch', () => {
  const ns = `dnsseal-w${process.pid % 10000}`;
  const root = scratchPinRoot('watch');
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  const guardOn = (dev: string) => egressOn(ns, dev);

  beforeAll(async () => {
    await wipe(root);
    delNs(ns);
    sh(['ip', 'netns', 'add', ns], { ok: true });
    proc = Bun.spawn(['nsenter', `--net=/run/netns/${ns}`, bunBin(), HELPER, 'watch', root, 'wanx', '300'], { stdout: 'pipe', stderr: 'inherit' });
    const reader = proc.stdout as ReadableStream<Uint8Array>;
    const first = await reader.getReader().read();
    expect(new TextDecoder().decode(first.value)).toContain('ready');
  });

  afterAll(() => stopAndTearDown(proc, ns, root));

  test('the guard is attached within a poll interval when the interface appears', async () => {
    sh(['ip', '-n', ns, 'link', 'add', 'wanx', 'type', 'veth', 'peer', 'name', 'wany'], { ok: true });
    expect(await waitFor(() => guardOn('wanx').length === 1, POLL_BOUND_MS), 'the guard on wanx').toBe(true);
    expect(guardOn('wanx')).toEqual(GUARD);
  });

  test('the guard is attached again when the interface is deleted and re-created', async () => {
    sh(['ip', '-n', ns, 'link', 'del', 'wanx'], { ok: true });
    // time for a poll to see it gone (not awaitable: the watcher prints nothing); one that does
    // not still sees a new ifindex on the re-created interface, which must get the guard too
    await Bun.sleep(500);
    sh(['ip', '-n', ns, 'link', 'add', 'wanx', 'type', 'veth', 'peer', 'name', 'wany'], { ok: true });
    expect(await waitFor(() => guardOn('wanx').length === 1, POLL_BOUND_MS), 'the guard on wanx').toBe(true);
    expect(guardOn('wanx')).toEqual(GUARD);
  });
});

/**
 * A watcher whose rule is "every interface except lo and the LAN one" (what the guard on every
 * interface will use): the WAN guard program, links tcx_all_<if>. Every other interface gets it,
 * one created later gets it on the first pass that starts after it appears (the helper prints
 * each finished pass), lo and the excluded interface never do, and `down` removes it all.
 */
for (const mode of ['tcx', 'clsact'] as const) {
  (skip ? describe.skip : describe)(`netns interface watch: all interfaces except some (${mode})`, () => {
    const ns = `dnsseal-wa${mode === 'tcx' ? 'x' : 'c'}${process.pid % 10000}`;
    const root = scratchPinRoot(`watchall-${mode}`);
    const GUARD_ALL = mode === 'tcx' ? ['dnsseal_wan_out'] : ['clsact'];
    let proc: ReturnType<typeof Bun.spawn> | undefined;
    let passes = 0;
    let exited = false;
    const guardOn = (dev: string) => egressOn(ns, dev);
    /** Waits until the helper finished pass `n` (a pass the helper prints once sync() returned). */
    const passDone = async (n: number) => {
      const end = Date.now() + 20_000;
      while (passes < n) {
        if (exited || Date.now() > end) throw new Error(`watch-all helper did not finish pass ${n} (last ${passes}, exited ${exited})`);
        await Bun.sleep(50);
      }
    };

    beforeAll(async () => {
      await wipe(root);
      delNs(ns);
      sh(['ip', 'netns', 'add', ns], { ok: true });
      sh(['ip', '-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb'], { ok: true });
      sh(['ip', '-n', ns, 'link', 'add', 'lanx', 'type', 'ifb'], { ok: true });
      proc = Bun.spawn(['nsenter', `--net=/run/netns/${ns}`, bunBin(), HELPER, 'watch-all', root, 'lo,lanx', mode, '500'], { stdout: 'pipe', stderr: 'inherit' });
      void (async () => {
        const decoder = new TextDecoder();
        let text = '';
        for await (const chunk of proc!.stdout as ReadableStream<Uint8Array>) {
          text += decoder.decode(chunk);
          for (const m of text.matchAll(/pass (\d+)\n/g)) passes = Math.max(passes, Number(m[1]));
          text = text.slice(text.lastIndexOf('\n') + 1);
        }
        exited = true;
      })();
      await passDone(1);
    });

    afterAll(() => stopAndTearDown(proc, ns, root));

    test('every interface but the excluded ones has the program after the first pass', () => {
      expect(guardOn('va')).toEqual(GUARD_ALL);
      expect(guardOn('vb')).toEqual(GUARD_ALL);
      expect(guardOn('lanx')).toEqual([]);
      expect(guardOn('lo')).toEqual([]);
    });

    test('an interface created later gets the program within one poll', async () => {
      sh(['ip', '-n', ns, 'link', 'add', 'late0.9', 'type', 'ifb'], { ok: true });
      // The pass running now may have listed the interfaces before late0.9 existed; the next one cannot.
      await passDone(passes + 2);
      expect(guardOn('late0.9')).toEqual(GUARD_ALL);
      if (mode === 'tcx') expect(existsSync(`${root}/links/tcx_all_late0:9`)).toBe(true);
    });

    test('lo and the excluded interface never get it, pass after pass', async () => {
      await passDone(passes + 3);
      expect(guardOn('lo')).toEqual([]);
      expect(guardOn('lanx')).toEqual([]);
    });

    test('the link of an interface that went away is unpinned on the next pass', async () => {
      sh(['ip', '-n', ns, 'link', 'del', 'late0.9'], { ok: true });
      await passDone(passes + 2);
      expect(existsSync(`${root}/links/tcx_all_late0:9`)).toBe(false);
      if (mode === 'tcx') expect(existsSync(`${root}/links/tcx_all_va`)).toBe(true);
    });

    test('down removes the program from every interface the watcher put it on', async () => {
      proc?.kill('SIGTERM');
      await proc?.exited;
      proc = undefined;
      const removed = JSON.parse(nsenter(ns, [bunBin(), HELPER, 'down', root], { ok: true, timeoutMs: 30000 }).out) as string[];
      for (const dev of ['va', 'vb']) expect(guardOn(dev)).toEqual([]);
      if (mode === 'tcx') expect(removed.filter((l) => l.startsWith('link tcx_all_')).sort()).toEqual(['link tcx_all_va', 'link tcx_all_vb']);
      else expect(removed.filter((l) => l.startsWith('tc filter ')).sort()).toEqual(['tc filter va egress', 'tc filter vb egress']);
      expect(existsSync(root)).toBe(false);
    });
  });
}
