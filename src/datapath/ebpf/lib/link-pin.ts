/**
 * bpf_links pinned in bpffs: the one way a program stays attached after the process is gone
 * (kill -9 included) and is found again by the next start. A link pin is owned by dnsseal:
 * created idempotently (a second attach updates the pinned link in place instead of adding a
 * second attachment), replaced when it no longer points where it should, and removed by
 * `dnsseal down` (which lists the links directory, so every link pinned here is found).
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DnssealError } from '../../../util/errors.ts';
import { type Bpf, BpfError } from '../bpf-syscall.ts';

/** What link pins need of the bpf(2) wrapper (a fake implements just this). */
export type LinkBpf = Pick<Bpf, 'objGet' | 'objPin' | 'close' | 'linkCreate' | 'linkUpdate' | 'linkInfo'>;

/**
 * An interface name as a bpffs pin name part. bpffs refuses names with a dot (EPERM, reserved),
 * and VLAN interfaces are usually named like `eth0.100`: a dot becomes `:`, which no interface
 * name can hold (so no two interfaces share a pin). Names without a dot are kept as they are.
 */
export function pinSafeIfname(ifname: string): string {
  return ifname.replaceAll('.', ':');
}

/** The pin name of one interface's link: `<prefix>_<ifname>` (`tcx_wan_eth0:100`). */
export function ifLinkName(prefix: string, ifname: string): string {
  return `${prefix}_${pinSafeIfname(ifname)}`;
}

export type LinkHow = 'updated' | 'created';

/**
 * Points the link pinned at `pin` to `progFd`, or creates one with `create()` and pins it.
 * A pinned link that `stillValid` rejects (a tcx link whose interface was re-created), or that
 * cannot be opened or updated (defunct, foreign), is unpinned and replaced.
 */
export function ensureLink(bpf: LinkBpf, pin: string, progFd: number, create: () => number, stillValid: (linkFd: number) => boolean): LinkHow {
  if (existsSync(pin)) {
    let linkFd = -1;
    try {
      linkFd = bpf.objGet(pin);
      if (stillValid(linkFd)) {
        bpf.linkUpdate(linkFd, progFd);
        return 'updated';
      }
    } catch {
      /* defunct or foreign: replace it below */
    } finally {
      if (linkFd >= 0) bpf.close(linkFd);
    }
    rmSync(pin, { force: true });
  }
  const linkFd = create();
  try {
    bpf.objPin(linkFd, pin);
  } finally {
    bpf.close(linkFd);
  }
  return 'created';
}

/**
 * The interface index a pinned tcx link is attached to: 0 once its device is gone (the link
 * is defunct then), undefined when there is no pin or it cannot be read as a link.
 */
export function linkIfindex(bpf: LinkBpf, pin: string): number | undefined {
  if (!existsSync(pin)) return undefined;
  let fd = -1;
  try {
    fd = bpf.objGet(pin);
    return bpf.linkInfo(fd).ifindex;
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) bpf.close(fd);
  }
}

/**
 * Removes the pin of a tcx link whose device is gone (it does nothing any more, and would stay
 * in bpffs until `dnsseal down`). A link still attached to a device (one renamed, say) is kept:
 * unpinning it would detach the program. Returns whether the pin was removed.
 */
export function pruneDefunctLink(bpf: LinkBpf, pin: string): boolean {
  if (linkIfindex(bpf, pin) !== 0) return false;
  rmSync(pin, { force: true });
  return true;
}

/**
 * Opens a pinned program for attaching; the caller closes the fd. A missing pin is reported
 * as `<component>/not_loaded` (the object was not loaded into this pin root).
 */
export function openPinnedProg(bpf: Pick<Bpf, 'objGet'>, pin: string, name: string, component: string): number {
  try {
    return bpf.objGet(pin);
  } catch (err) {
    if (err instanceof BpfError && err.code === 'not_found') {
      throw new DnssealError(component, 'not_loaded', `program ${name} is not pinned under ${dirname(pin)}`);
    }
    throw err;
  }
}
