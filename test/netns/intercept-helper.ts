/**
 * Runs inside the node's network namespace for test/netns/intercept-nat.test.ts (interface
 * indexes and tc attachments are per namespace; pins and maps are global):
 *   up <pinRoot> <lan> <wan|-> <tcx|clsact> <group> <mark> <clientCidrs,…> <pools,…> <reals,…>
 *      = what the daemon does at start in intercept mode: main datapath (LAN marker; guard on WAN
 *      when given), client groups, channel, the real addresses in dnsseal_dests (registry's job),
 *      then createIntercept() as the daemon calls it (NAT loaded + attached to the LAN, pool
 *      rebuilt from the pins), intercept addresses allocated for the reals. Prints {map, used, adoptedBefore} and EXITS: pins,
 *      links and filters stay (as after a daemon restart or kill -9).
 *   down <pinRoot>   teardown + the intercept clsact filters; prints the removed objects.
 */
import { existsSync } from 'node:fs';
import { AttachType, Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { createEbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { DEST_F_INTERCEPT } from '../../src/datapath/layout.ts';
import { teardown } from '../../src/datapath/teardown.ts';
import { detachInterceptClsact } from '../../src/intercept/attach.ts';
import { createIntercept } from '../../src/intercept/factory.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

const csv = (s: string | undefined) => (!s || s === '-' ? [] : s.split(','));

/** Program names on the interface's tc hooks: tcx links in order, and clsact filters by pref. */
function attached(dev: string): { tcxIngress: string[]; tcxEgress: string[]; clsactIngress: string[]; clsactEgress: string[] } {
  const bpf = new Bpf();
  const idx = bpf.ifIndex(dev);
  const names = (type: number) => {
    try {
      return bpf.progQuery(idx, type).map((id) => {
        const fd = bpf.progFdById(id);
        try {
          return bpf.progInfo(fd).name;
        } finally {
          bpf.close(fd);
        }
      });
    } catch {
      return [];
    }
  };
  const clsact = (dir: string) =>
    [...Bun.spawnSync(['tc', 'filter', 'show', 'dev', dev, dir]).stdout.toString().matchAll(/pref (\d+) bpf .*?(dnsseal_\w+)/g)].map((m) => `${m[1]}:${m[2]}`);
  return { tcxIngress: names(AttachType.tcxIngress), tcxEgress: names(AttachType.tcxEgress), clsactIngress: clsact('ingress'), clsactEgress: clsact('egress') };
}
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
    // `-` for wan: the NAT alone, no guard (the guards go on every interface otherwise)
    noGuard: wan === '-',
  });
  dp.setClientGroups(csv(clients).map((cidr) => ({ cidr, group: g })));
  dp.setChannels([{ id: 1, mark: Number(mark), up: true }]);
  for (const addr of csv(reals)) dp.upsert({ group: g, addr }, { channelId: 1, mark: Number(mark), flags: DEST_F_INTERCEPT });
  const adopted = existsSync(`${pinRoot}/maps/dnsseal_icpt_fwd`);
  // The daemon's call: NAT loaded + attached to the LAN, pool rebuilt from the pins.
  const rt = createIntercept({
    cfg: { mode: 'intercept', lan: [lan!], interceptPools: csv(pools), minHoldS: 60, idleS: 300 },
    datapathKind: dp.kind,
    log: silentLogger,
    clock: realClock,
    metrics: new Metrics(),
    pinRoot,
    pollMs: 0,
    tcMode: tcMode as 'tcx' | 'clsact',
  })!;
  const map = rt.pool.allocate(g, csv(reals), 60, ['svc.corp.example']);
  console.log(JSON.stringify({ kind: rt.kind, map: Object.fromEntries(map), used: rt.pool.stats().used, adoptedBefore: adopted, lan: attached(lan!) }));
  rt.close();
  dp.close();
} else if (cmd === 'down') {
  const out = await teardown(silentLogger, { pinRoot: args[0] });
  out.push(...detachInterceptClsact());
  console.log(JSON.stringify(out));
} else {
  console.error('usage: intercept-helper.ts up|down …');
  process.exit(2);
}
