/**
 * `dnsseal down` without a running daemon: detach every program (bpf_links by LINK_DETACH, the
 * clsact filters of this network namespace by `tc filter del`), remove every pin under the pin
 * root, remove the directories. Idempotent: a second run finds nothing and returns [].
 * Refused while a `dnsseal run` holds the pin root (stop it first). Returns a line per object.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { detachClsactAll } from './ebpf/attach.ts';
import { Bpf } from './ebpf/bpf-syscall.ts';
import { lockPinRoot } from './ebpf/loader.ts';
import { DEFAULT_PIN_ROOT, PinPaths } from './ebpf/pins.ts';
import { removeTlsRoute } from './ebpf/tls-route.ts';

export interface TeardownOptions {
  /** Default /sys/fs/bpf/dnsseal. */
  pinRoot?: string;
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export async function teardown(log: Logger, opts: TeardownOptions = {}): Promise<string[]> {
  const paths = new PinPaths(opts.pinRoot ?? DEFAULT_PIN_ROOT);
  const out: string[] = [];
  if (!existsSync(paths.root)) {
    out.push(...detachClsactAll(), ...removeTlsRoute());
    return out;
  }
  let bpf: Bpf;
  try {
    bpf = new Bpf();
  } catch (err) {
    throw new DnssealError('datapath', 'unavailable', `teardown: ${errorMessage(err)}`, { cause: err });
  }
  const lockFd = lockPinRoot(bpf, paths); // throws 'busy' while a daemon runs
  try {
    for (const name of entries(paths.links)) {
      const pin = paths.link(name);
      try {
        const fd = bpf.objGet(pin);
        try {
          bpf.linkDetach(fd);
        } catch (err) {
          log.debug('teardown: link detach failed (already defunct?)', { link: name, err: errorMessage(err) });
        } finally {
          bpf.close(fd);
        }
      } catch (err) {
        log.warn('teardown: cannot open pinned link', { link: name, err: errorMessage(err) });
      }
      rmSync(pin, { force: true });
      out.push(`link ${name}`);
    }
    out.push(...detachClsactAll(), ...removeTlsRoute());
    for (const dir of [paths.progs, paths.maps]) {
      for (const name of entries(dir)) {
        rmSync(`${dir}/${name}`, { force: true });
        out.push(`${dir === paths.progs ? 'prog' : 'map'} ${name}`);
      }
    }
  } finally {
    bpf.close(lockFd);
  }
  for (const dir of [paths.links, paths.progs, paths.maps, paths.root]) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('teardown: cannot remove directory', { dir, err: errorMessage(err) });
    }
  }
  for (const line of out) log.info('teardown: removed', { what: line });
  return out;
}
