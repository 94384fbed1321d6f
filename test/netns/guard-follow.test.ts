/**
 * Host mode with no `wan` configured: the tc leak guard follows the default routes (root only;
 * in gateway and intercept modes it is on every interface but lo, test/netns/guard-everywhere). A network
 * namespace with veth uplinks ga, gb, gc, gd.10 and the default route via ga; the eBPF backend
 * runs in the namespace (a child process: interface indexes and tc attachments are per
 * namespace) with `wan` derived as the daemon derives it and the default poll interval (3 s). The
 * route moves to gb, an IPv6 default appears on gc, the route moves to gd.10: each gets the guard
 * within 10 s, and those it left keep it (never detached: fail closed). Teardown removes every
 * one. Own pin root; run alone with the daemon tests.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { defaultCgroupPath } from '../../src/datapath/ebpf/pins.ts';
import { kernelHasTcx, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { DP_HELPER as HELPER, egressOn, stopAndTearDown, waitFor as waitForEvery } from './fixtures/dp-watch.ts';
import { bunBin, delNs, nsenter, script, sh } from './netns.ts';

const cgRoot = defaultCgroupPath();
const skip = privSkipReason() ?? (cgRoot ? undefined : 'no cgroup v2 mount') ?? (sh(['which', 'nsenter']).code !== 0 ? 'nsenter missing' : undefined);
if (skip) console.log(`netns guard follows the default route: skipping: ${skip}`);
/** What the query reports for our guard: the tcx program name, or one clsact filter (< 6.6). */
const GUARD = kernelHasTcx() ? ['dnsseal_wan_out'] : ['clsact'];
const POLL_BOUND_MS = 10_000;

/** The backend as the daemon builds it with no `wan`: derived wan, default routes followed. */
const BACKEND = `
import { createEbpfDatapath } from '${process.cwd()}/src/datapath/ebpf/index.ts';
import { followedDefaultRoutes, withGuardInterfaces } from '${process.cwd()}/src/datapath/guard-interfaces.ts';
import { Metrics } from '${process.cwd()}/src/ops/metrics.ts';
import { realClock } from '${process.cwd()}/src/util/clock.ts';
import { createLogger } from '${process.cwd()}/src/util/log.ts';
const log = createLogger({ format: 'json', write: (l) => console.log(l) });
const configured = { mode: 'host', lan: [], wan: [], channels: [] };
const cfg = withGuardInterfaces(configured, log);
// each read of the default routes (one per poll) is printed, so the test can wait for polls
const follow = followedDefaultRoutes(configured)!;
const defaultRoutes = () => {
  const devs = follow();
  console.log('default routes read');
  return devs;
};
const dp = createEbpfDatapath({ cfg, log, clock: realClock, metrics: new Metrics(), pinRoot: process.env.PIN_ROOT, cgroupPath: process.env.CG, defaultRoutes });
console.log('ready');
process.on('SIGTERM', () => { dp.close(); process.exit(0); });
setInterval(() => {}, 1 << 30);
`;

(skip ? describe.skip : describe)('netns guard follows the default route', () => {
  const ns = `dnsseal-gf${process.pid % 10000}`;
  const root = scratchPinRoot('guardfollow');
  /** The host hooks go on this child cgroup, not the machine's root. */
  const cg = `${cgRoot}/dnsseal-gf-${process.pid}`;
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  let logged = '';
  const guardOn = (dev: string) => egressOn(ns, dev);
  const waitFor = (fn: () => boolean, ms: number) => waitForEvery(fn, ms, 250);
  const announced = (dev: string) => logged.split(`default route now via ${dev}; leak guard attached`).length - 1;
  const reads = () => logged.split('default routes read\n').length - 1;

  beforeAll(async () => {
    await wipe(root);
    delNs(ns);
    mkdirSync(cg, { recursive: true });
    sh(['ip', 'netns', 'add', ns], { ok: true });
    script(ns, [
      'ip link set lo up',
      'for d in a b c; do ip link add g$d type veth peer name p$d; ip link set g$d up; ip link set p$d up; done',
      // A VLAN-style name: bpffs refuses dots in pin names, so its tcx link pin must not have one.
      'ip link add gd.10 type veth peer name pd; ip link set gd.10 up; ip link set pd up',
      'ip addr add 10.81.0.1/24 dev ga; ip addr add 10.82.0.1/24 dev gb; ip -6 addr add fd83::1/64 dev gc nodad; ip addr add 10.84.0.1/24 dev gd.10',
      'ip route add default via 10.81.0.2 dev ga',
      // An unreachable IPv6 default (on lo, reject flag) must not count as an uplink.
      'ip -6 route add unreachable default metric 4000',
    ]);
    proc = Bun.spawn(['nsenter', `--net=/run/netns/${ns}`, bunBin(), '-e', BACKEND], { stdout: 'pipe', stderr: 'inherit', env: { ...process.env, PIN_ROOT: root, CG: cg } });
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const ready = Promise.withResolvers<void>();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        logged += decoder.decode(value);
        if (logged.includes('\nready\n') || logged.startsWith('ready\n')) ready.resolve();
      }
      ready.reject(new Error(`backend exited before ready: ${logged}`));
    })();
    await ready.promise;
  });

  afterAll(async () => {
    await stopAndTearDown(proc, ns, root);
    try {
      rmdirSync(cg);
    } catch {
      /* already gone */
    }
  });

  test('the guard sits on the default-route interface only when wan is not configured', () => {
    expect(guardOn('ga')).toEqual(GUARD);
    expect(guardOn('gb')).toEqual([]);
    expect(guardOn('gc')).toEqual([]);
    expect(guardOn('lo')).toEqual([]);
  });

  test('the guard is attached to the new interface within one poll when the default route moves', async () => {
    sh(['ip', '-n', ns, 'route', 'replace', 'default', 'via', '10.82.0.2', 'dev', 'gb'], { ok: true });
    expect(sh(['ip', '-n', ns, 'route', 'show', 'default']).out).not.toContain('dev ga');
    expect(await waitFor(() => guardOn('gb').length === 1, POLL_BOUND_MS)).toBe(true);
    expect(guardOn('gb')).toEqual(GUARD);
    expect(guardOn('ga')).toEqual(GUARD);
    expect(await waitFor(() => announced('gb') === 1, 2000)).toBe(true);
  });

  test('the guard is attached to the interface of a new IPv6 default route', async () => {
    sh(['ip', '-n', ns, '-6', 'route', 'add', 'default', 'via', 'fd83::2', 'dev', 'gc'], { ok: true });
    expect(await waitFor(() => guardOn('gc').length === 1, POLL_BOUND_MS)).toBe(true);
    expect(guardOn('gc')).toEqual(GUARD);
    expect(guardOn('lo')).toEqual([]);
  });

  test('the guard is attached when the default route moves to an interface with a dot in its name', async () => {
    sh(['ip', '-n', ns, 'route', 'replace', 'default', 'via', '10.84.0.2', 'dev', 'gd.10'], { ok: true });
    expect(await waitFor(() => guardOn('gd.10').length === 1, POLL_BOUND_MS)).toBe(true);
    expect(guardOn('gd.10')).toEqual(GUARD);
  });

  test('the guard stays on interfaces that lost their default route and is announced once', async () => {
    sh(['ip', '-n', ns, 'route', 'del', 'default'], { ok: true });
    sh(['ip', '-n', ns, '-6', 'route', 'del', 'default', 'via', 'fd83::2', 'dev', 'gc'], { ok: true });
    expect(sh(['ip', '-n', ns, 'route', 'show', 'default']).out.trim()).toBe('');
    // A poll that read the routes after they went, and finished: the next read may have come
    // before the deletion (its line still in the pipe), the one after may be mid-pass, the third
    // read means the pass of the second is done.
    const seen = reads();
    expect(await waitFor(() => reads() >= seen + 3, 30_000), 'three more reads of the default routes').toBe(true);
    for (const dev of ['ga', 'gb', 'gc', 'gd.10']) expect(guardOn(dev)).toEqual(GUARD);
    expect([announced('ga'), announced('gb'), announced('gc'), announced('gd.10')]).toEqual([0, 1, 1, 1]);
  });

  test('teardown removes the guard from every interface it was added to', async () => {
    proc?.kill('SIGTERM');
    await proc?.exited;
    proc = undefined;
    const removed = JSON.parse(nsenter(ns, [bunBin(), HELPER, 'down', root], { ok: true, timeoutMs: 30000 }).out) as string[];
    for (const dev of ['ga', 'gb', 'gc', 'gd.10']) expect(guardOn(dev)).toEqual([]);
    if (kernelHasTcx()) expect(removed.filter((l) => l.startsWith('link tcx_wan_')).sort()).toEqual(['link tcx_wan_ga', 'link tcx_wan_gb', 'link tcx_wan_gc', 'link tcx_wan_gd:10']);
    expect(existsSync(root)).toBe(false);
  });
});
