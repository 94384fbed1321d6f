/**
 * charon's own UDP sockets (IKE on 500, NAT-T on 4500, or whatever ports it was given), found
 * through /proc, so the data path can exempt exactly those from the leak guard (issue #11 item 7:
 * an exemption by port number let any application's or LAN client's UDP to 500/4500 out in clear).
 *
 * Which process is charon: the one that holds the LISTENING unix socket bound at the VICI path
 * dnsseal talks to (/proc/net/unix gives its inode, /proc/<pid>/fd the holder). That socket sits in
 * a root-owned directory, so no other process can pose as charon by name. Its UDP sockets: the
 * socket fds of that process whose inode is in its network namespace's /proc/<pid>/net/udp or udp6.
 *
 * Read off the DNS path, at each VICI (re)connect: a restarted charon has new sockets, and until
 * they are known its IKE to protected addresses is dropped (fail closed), not exempt.
 */
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/** The parts of /proc this needs (a fake stands in for tests). */
export interface ProcFs {
  read(path: string): string;
  /** Directory entries; [] when it cannot be read (a process that went away, no permission). */
  list(dir: string): string[];
  /** A symlink's target, or undefined. */
  link(path: string): string | undefined;
  /** The path with every symlink resolved (the socket itself may be one: /var/run/charon.vici →
   * wherever charon binds it), else with its directory's resolved, else the path itself. */
  canonical(path: string): string;
}

export const realProcFs: ProcFs = {
  read: (path) => readFileSync(path, 'utf8'),
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  link: (path) => {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  },
  canonical: (path) => {
    try {
      return realpathSync(path);
    } catch {
      try {
        return `${realpathSync(dirname(path))}/${basename(path)}`;
      } catch {
        return path;
      }
    }
  },
};

export interface CharonSockets {
  pid: number;
  /** charon's fd numbers of its UDP sockets (IPv4 and IPv6). */
  fds: number[];
}

/** __SO_ACCEPTCON in /proc/net/unix's Flags column: a listening socket. */
const SO_ACCEPTCON = 0x10000;

/**
 * The inode of the listening unix socket bound at `path`, from /proc/net/unix text
 * (`Num RefCount Protocol Flags Type St Inode Path`); `canonical` resolves both sides.
 */
export function listenerInode(unixTable: string, path: string, canonical: (p: string) => string = (p) => p): string | undefined {
  const want = canonical(path);
  for (const line of unixTable.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = Number.parseInt(f[3]!, 16);
    if (!(flags & SO_ACCEPTCON)) continue;
    const p = f.slice(7).join(' ');
    if (p === path || canonical(p) === want) return f[6];
  }
  return undefined;
}

/** Socket inodes in /proc/net/udp or udp6 text (the `inode` column, the tenth). */
export function udpInodes(table: string): Set<string> {
  const out = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 10 && f[9] !== '0') out.add(f[9]!);
  }
  return out;
}

/** `socket:[123]` → `123`. */
function socketInode(target: string | undefined): string | undefined {
  const m = target && /^socket:\[(\d+)\]$/.exec(target);
  return m ? m[1] : undefined;
}

/** The process holding the socket with this inode, or undefined. */
function holderOf(inode: string, proc: ProcFs): number | undefined {
  for (const pid of proc.list('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    for (const fd of proc.list(`/proc/${pid}/fd`)) {
      if (socketInode(proc.link(`/proc/${pid}/fd/${fd}`)) === inode) return Number(pid);
    }
  }
  return undefined;
}

function readOr(proc: ProcFs, path: string): string {
  try {
    return proc.read(path);
  } catch {
    return '';
  }
}

/** charon (the VICI listener at `viciPath`) and its UDP socket fds, or undefined when not found. */
export function findCharonSockets(viciPath: string, proc: ProcFs = realProcFs): CharonSockets | undefined {
  const inode = listenerInode(readOr(proc, '/proc/net/unix'), viciPath, proc.canonical);
  if (!inode) return undefined;
  const pid = holderOf(inode, proc);
  if (pid === undefined) return undefined;
  const udp = new Set([...udpInodes(readOr(proc, `/proc/${pid}/net/udp`)), ...udpInodes(readOr(proc, `/proc/${pid}/net/udp6`))]);
  const fds: number[] = [];
  for (const fd of proc.list(`/proc/${pid}/fd`)) {
    const ino = socketInode(proc.link(`/proc/${pid}/fd/${fd}`));
    if (ino && udp.has(ino)) fds.push(Number(fd));
  }
  return { pid, fds: fds.sort((a, b) => a - b) };
}
