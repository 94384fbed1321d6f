/**
 * `dnsseal down` without a running daemon (and the last step of a daemon stopped by `down`):
 * remove every kernel object dnsseal made — the `dnsseal-*` connections in strongSwan (and
 * their XFRM state and policies), the eBPF programs, links and pins, the intercept NAT and its
 * pool routes, the enforce_dns nftables table. Each part is idempotent; a part that fails does not stop the others, and the
 * first failure is rethrown at the end so the operator sees it.
 *
 * It lives beside the daemon, not in ops/: like the daemon it assembles every back end
 * (datapath, intercept, ipsec), and a shared lower folder must not import them.
 */
import { teardown as teardownDatapath } from '../datapath/teardown.ts';
import { detachInterceptClsact } from '../intercept/attach.ts';
import { removePoolRoutes } from '../intercept/routes.ts';
import { NftDnsEnforcer } from '../datapath/dns-enforce.ts';
import { teardownIpsec } from '../ipsec/teardown.ts';
import { ViciClient } from '../ipsec/vici-client.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

export interface KernelDownOptions {
  /** charon's VICI socket (default /var/run/charon.vici). */
  viciSocket?: string;
  /** Intercept pools whose routes to remove. */
  interceptPools?: string[];
  /** Pin root (default /sys/fs/bpf/dnsseal). */
  pinRoot?: string;
}

export async function kernelDown(log: Logger, opts: KernelDownOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  let firstError: unknown;
  const part = async (what: string, fn: () => Promise<string[]> | string[]) => {
    try {
      removed.push(...(await fn()));
    } catch (err) {
      log.warn('down: could not remove everything', { part: what, err: errorMessage(err) });
      firstError ??= err;
    }
  };
  await part('ipsec', async () => {
    const vici = new ViciClient({ socketPath: opts.viciSocket, connectTimeoutMs: 1000, timeoutMs: 5000 });
    try {
      return await teardownIpsec(vici, log);
    } finally {
      vici.close();
    }
  });
  await part('datapath', () => teardownDatapath(log, { pinRoot: opts.pinRoot }));
  await part('intercept', () => detachInterceptClsact());
  await part('enforce_dns', () => new NftDnsEnforcer().remove());
  if (opts.interceptPools?.length) await part('intercept-routes', () => removePoolRoutes(opts.interceptPools!));
  if (firstError) throw firstError;
  return removed;
}
