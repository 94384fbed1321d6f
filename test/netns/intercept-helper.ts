/**
 * Runs inside the node's network namespace for test/netns/intercept-nat.test.ts (interface
 * indexes and tc attachments are per namespace; pins and maps are global):
 *   up <pinRoot> <lan> <wan|-> <tcx|clsact> <group> <mark> <clientCidrs,…> <pools,…> <reals,…>
 *      = what the daemon does at start in intercept mode: main datapath (LAN marker; guard on WAN
 *      when given), client groups, channel, the real addresses in dnsseal_dests (registry's job),
 *      intercept object loaded + attached to the LAN, pool rebuilt from the pins, intercept
 *      addresses allocated for the reals. Prints {map, used, adoptedBefore} and EXITS: pins,
 *      links and filters stay (as after a daemon restart or kill -9).
 *   down <pinRoot>   teardown + the intercept clsact filters; prints the removed objects.
 */
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { createEbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { DEST_F_INTERCEPT } from '../../src/datapath/layout.ts';
import { teardown } from '../../src/datapath/teardown.ts';
import { attachIntercept, detachInterceptClsact } from '../../src/intercept/attach.ts';
import { loadIntercept } from '../../src/intercept/ebpf-loader.ts';
import { EbpfInterceptStore, clockOffset } from '../../src/intercept/ebpf-store.ts';
import { InterceptPool } from '../../src/intercept/pool.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

const csv = (s: string | undefined) => (!s || s === '-' ? [] : s.split(','));
const [cmd, ...args] = process.argv.slice(2);

if (cmd === 'up') {
  const [pinRoot, lan, wan, tcMode, group, mark, clients, pools, reals] = args as string[];
  const g = Number(group);
  const dp = createEbpfDatapath({
    cfg: { mode: 'intercept', lan: [lan!], wan: csv(wan), channels: [] },
    log: silentLogger,
    clock: realClock,
    metrics: new Metrics(),
    pinRoot,
    pollMs: 0,
    tcMode: tcMode as 'tcx' | 'clsact',
  });
  dp.setClientGroups(csv(clients).map((cidr) => ({ cidr, group: g })));
  dp.setChannels([{ id: 1, mark: Number(mark), up: true }]);
  for (const addr of csv(reals)) dp.upsert({ group: g, addr }, { channelId: 1, mark: Number(mark), flags: DEST_F_INTERCEPT });
  const bpf = new Bpf();
  const paths = new PinPaths(pinRoot);
  const { adopted } = loadIntercept(bpf, { paths, log: silentLogger });
  attachIntercept(bpf, paths, lan!, silentLogger, tcMode as 'tcx' | 'clsact');
  const store = new EbpfInterceptStore(bpf, paths, clockOffset(bpf, realClock));
  const pool = InterceptPool.open({ pools: csv(pools), store, clock: realClock, minHoldMs: 60_000, idleMs: 300_000 });
  const map = pool.allocate(g, csv(reals), 60, ['svc.corp.example']);
  console.log(JSON.stringify({ map: Object.fromEntries(map), used: pool.stats().used, adoptedBefore: adopted }));
  store.close();
  dp.close();
} else if (cmd === 'down') {
  const out = await teardown(silentLogger, { pinRoot: args[0] });
  out.push(...detachInterceptClsact());
  console.log(JSON.stringify(out));
} else {
  console.error('usage: intercept-helper.ts up|down …');
  process.exit(2);
}
