/**
 * The host-mode data path tests' namespaces (root only): their set-up and their end.
 *
 *   hostLoop(ns):   one namespace, the host: v0 198.51.100.1/24, fd00:3::1/64, its peer v1 in the
 *                   same namespace with a fixed MAC and static neighbours, so packets "leave" by v0
 *                   and arrive on v1 with nothing else answering; 203.0.113.0/24 and
 *                   2001:db8:20::/64 routed via v1's addresses.
 *   hostPair(h, w): the host h (v0 198.51.100.1/24, fd00:3::1/64, default routes via w) and a
 *                   second namespace w (eth0 198.51.100.2/24, fd00:3::2/64) on a veth.
 * Each takes the test's own commands (nft counters, addresses) after the common ones.
 * hostTearDown: `down` run by the data path helper inside the namespace (programs detached, pins
 * removed), the namespaces deleted, the scratch cgroup removed once its last process has gone,
 * the pin root wiped.
 */
import { rmdirSync } from 'node:fs';
import { wipe } from '../datapath/ebpf/helpers.ts';
import { bunBin, delNs, nsenter, script, sh } from './netns.ts';

export const DP_HELPER = 'test/netns/fixtures/dp-helper.ts';

export function hostLoop(ns: string, extra: string[] = []): void {
  delNs(ns);
  sh(['ip', 'netns', 'add', ns], { ok: true });
  script(ns, [
    'ip link set lo up; ip link add v0 type veth peer name v1; ip link set v1 address 02:00:00:00:00:99; ip link set v0 up; ip link set v1 up',
    'ip addr add 198.51.100.1/24 dev v0; ip -6 addr add fd00:3::1/64 dev v0 nodad',
    'ip neigh add 198.51.100.2 lladdr 02:00:00:00:00:99 dev v0; ip -6 neigh add fd00:3::2 lladdr 02:00:00:00:00:99 dev v0',
    'ip route add 203.0.113.0/24 via 198.51.100.2; ip -6 route add 2001:db8:20::/64 via fd00:3::2',
    ...extra,
  ]);
}

export function hostPair(h: string, w: string, extra: { h?: string[]; w?: string[] } = {}): void {
  delNs(h, w);
  for (const n of [h, w]) sh(['ip', 'netns', 'add', n], { ok: true });
  sh(['ip', 'link', 'add', 'v0', 'netns', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', w], { ok: true });
  script(h, [
    'ip link set lo up; ip link set v0 up',
    'ip addr add 198.51.100.1/24 dev v0; ip -6 addr add fd00:3::1/64 dev v0 nodad',
    'ip route add default via 198.51.100.2; ip -6 route add default via fd00:3::2',
    ...(extra.h ?? []),
  ]);
  script(w, ['ip link set lo up; ip link set eth0 up', 'ip addr add 198.51.100.2/24 dev eth0; ip -6 addr add fd00:3::2/64 dev eth0 nodad', ...(extra.w ?? [])]);
}

export async function hostTearDown(o: { ns: string; others?: string[]; root: string; cgroup: string }): Promise<void> {
  nsenter(o.ns, [bunBin(), DP_HELPER, 'down', o.root], { timeoutMs: 30000 });
  delNs(o.ns, ...(o.others ?? []));
  await Bun.sleep(100);
  try {
    rmdirSync(o.cgroup);
  } catch {
    /* still populated by an exiting process */
  }
  await wipe(o.root);
}
