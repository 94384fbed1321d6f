/**
 * The end of a host-mode data path test: `down` run by the data path helper inside the namespace
 * (programs detached, pins removed), the namespaces deleted, the scratch cgroup removed once its
 * last process has gone, the pin root wiped.
 */
import { rmdirSync } from 'node:fs';
import { wipe } from '../datapath/ebpf/helpers.ts';
import { bunBin, delNs, nsenter } from './netns.ts';

export const DP_HELPER = 'test/netns/fixtures/dp-helper.ts';

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
