/**
 * The tls relay's listening socket, which Bun opened: IP_TRANSPARENT and its network namespace
 * cookie. IP_TRANSPARENT on a listening socket of this process that Bun opened (Bun.listen has no
 * option for it): the socket is found by its port in /proc/self/net/tcp{,6} (LISTEN, its inode),
 * its descriptor by that inode among /proc/self/fd, and the option set with setsockopt(2)
 * through bun:ffi. Gateway mode needs it for the tls relay: a connection the LAN program handed
 * to the relay's socket (bpf_sk_assign) keeps the original destination as its local address, and
 * only a transparent socket may answer from an address that is not the router's own.
 * Needs CAP_NET_ADMIN (or CAP_NET_RAW).
 */
import { dlopen, FFIType, ptr } from 'bun:ffi';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { DnssealError } from '../../util/errors.ts';

const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const SOL_IPV6 = 41;
const IPV6_TRANSPARENT = 75;
const TCP_LISTEN = '0A';
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;

/** Inodes of this process's listening TCP sockets on `port`, with their family. */
export function listeningInodes(port: number, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): { inode: string; v6: boolean }[] {
  const out: { inode: string; v6: boolean }[] = [];
  for (const [file, v6] of [['/proc/self/net/tcp', false], ['/proc/self/net/tcp6', true]] as const) {
    let text = '';
    try {
      text = read(file);
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
      const local = f[1]!;
      if (parseInt(local.slice(local.indexOf(':') + 1), 16) === port) out.push({ inode: f[9]!, v6 });
    }
  }
  return out;
}

function libc() {
  return dlopen('libc.so.6', {
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  });
}

/** Our descriptors of the listening TCP sockets on `port` (throws when there is none). */
function listenerFds(port: number): { fd: number; v6: boolean }[] {
  const want = new Map(listeningInodes(port).map((s) => [`socket:[${s.inode}]`, s.v6]));
  const out: { fd: number; v6: boolean }[] = [];
  for (const fd of want.size ? readdirSync('/proc/self/fd') : []) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const v6 = want.get(link);
    if (v6 !== undefined) out.push({ fd: Number(fd), v6 });
  }
  if (out.length === 0) throw new DnssealError('datapath', 'tls_relay', `no listening socket of port ${port} in this process`);
  return out;
}

/** Sets IP_TRANSPARENT (IPV6_TRANSPARENT for an IPv6 socket) on our listening sockets of `port`; returns how many. */
export function makeListenerTransparent(port: number): number {
  const lib = libc();
  const one = new Int32Array([1]);
  try {
    const fds = listenerFds(port);
    for (const { fd, v6 } of fds) {
      const r = v6 ? lib.symbols.setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, ptr(one), 4) : lib.symbols.setsockopt(fd, SOL_IP, IP_TRANSPARENT, ptr(one), 4);
      if (r !== 0) throw new DnssealError('datapath', 'tls_relay', `setsockopt IP_TRANSPARENT on the relay's socket (fd ${fd}) failed: needs CAP_NET_ADMIN`);
    }
    return fds.length;
  } finally {
    lib.close();
  }
}

/** SO_NETNS_COOKIE of our listening socket on `port`: the network namespace it lives in (Linux 5.14+; 0n when unknown). */
export function listenerNetnsCookie(port: number): bigint {
  const lib = libc();
  const v = new BigUint64Array(1);
  const len = new Uint32Array([8]);
  try {
    const fd = listenerFds(port)[0]!.fd;
    return lib.symbols.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, ptr(v), ptr(len)) === 0 ? v[0]! : 0n;
  } finally {
    lib.close();
  }
}
