/**
 * Tags charon's own UDP sockets in `dnsseal_ike_socks` (BPF_MAP_TYPE_SK_STORAGE, bpf/dnsseal.h):
 * the guard exempts exactly those from its drop, never a port number. An SK_STORAGE element is
 * keyed by a socket fd of the CALLING process, so each of charon's sockets is first duplicated
 * into this process with pidfd_getfd(2) (Linux 5.6; root may do it to any process), tagged, and
 * the duplicate closed. The tag lives on the socket itself: it dies with it, and a restarted
 * charon's new sockets stay untagged (their IKE to protected addresses dropped) until the next
 * tagging, at the VICI reconnect.
 */
import { type Pointer, read } from 'bun:ffi';
import { errorMessage } from '../../util/errors.ts';
import { IKE_SOCK_CHARON, IkeSockLayout } from '../layout.ts';
import { BPF_ANY, type Bpf, stable } from './bpf-syscall.ts';

/** The same number on every architecture (the unified syscall table from 5.1 on). */
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;

export interface TagResult {
  tagged: number;
  /** fds that could not be tagged (gone in the meantime, not a socket), with why. */
  failed: { fd: number; err: string }[];
}

/** Tags the sockets `fds` of process `pid`; throws only when the process cannot be reached at all. */
export function tagIkeSockets(bpf: Bpf, mapFd: number, pid: number, fds: readonly number[]): TagResult {
  const sys = (nr: number, a: number, b: number) => bpf.lib.syscall(nr, a, b as unknown as Pointer, 0);
  const errno = () => read.i32(bpf.lib.errnoPtr(), 0);
  const pidfd = sys(SYS_PIDFD_OPEN, pid, 0);
  if (pidfd < 0) throw new Error(`pidfd_open(${pid}) failed (errno ${errno()})`);
  const key = stable(4);
  const value = stable(IkeSockLayout.size);
  new DataView(value.buf.buffer, value.buf.byteOffset).setUint32(IkeSockLayout.flags, IKE_SOCK_CHARON, true);
  const out: TagResult = { tagged: 0, failed: [] };
  try {
    for (const fd of fds) {
      const dup = sys(SYS_PIDFD_GETFD, pidfd, fd);
      if (dup < 0) {
        out.failed.push({ fd, err: `pidfd_getfd: errno ${errno()}` });
        continue;
      }
      try {
        new DataView(key.buf.buffer, key.buf.byteOffset).setInt32(0, dup, true);
        bpf.update(mapFd, key, value, BPF_ANY);
        out.tagged++;
      } catch (err) {
        out.failed.push({ fd, err: errorMessage(err) });
      } finally {
        bpf.close(dup);
      }
    }
  } finally {
    bpf.close(pidfd);
  }
  return out;
}
