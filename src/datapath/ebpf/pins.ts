/**
 * Where dnsseal's kernel objects live in bpffs (one pin root, `pin_root`, for every object: the
 * main one and the intercept NAT), and the names of the main object's programs and maps.
 *   <root>/maps/<map>     pinned maps (adopted on every start, never flushed)
 *   <root>/progs/<prog>   the programs currently attached
 *   <root>/links/<name>   bpf_links: cg_<prog> (cgroup) and tcx_<lan|wan|in|lanout>_<ifname> (tcx; a dot in
 *                         <ifname> is written `:`, see lib/link-pin.ts), icpt_<in|out>_<ifname> (intercept)
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { DnssealError } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/dnsseal';
export const BPFFS_MOUNT = '/sys/fs/bpf';

export const MAPS = {
  dests4: 'dnsseal_dests4',
  dests6: 'dnsseal_dests6',
  clients: 'dnsseal_clients',
  channels: 'dnsseal_channels',
  counters: 'dnsseal_counters',
  config: 'dnsseal_config',
  ikeSocks: 'dnsseal_ike_socks',
} as const;
export type MapName = (typeof MAPS)[keyof typeof MAPS];

/** The tls channel interception's maps (main object only; bpf/lib/tls_maps.h). */
export const TLS_MAPS = {
  config: 'dnsseal_tls_config',
  cookie: 'dnsseal_tls_cookie',
  orig: 'dnsseal_tls_orig',
  counters: 'dnsseal_tls_counters',
} as const;

export const PROGS = {
  conn4: 'dnsseal_conn4',
  conn6: 'dnsseal_conn6',
  send4: 'dnsseal_send4',
  send6: 'dnsseal_send6',
  cgOut: 'dnsseal_cg_out',
  tlsOps: 'dnsseal_tls_ops',
  tlsPeer4: 'dnsseal_peer4',
  tlsPeer6: 'dnsseal_peer6',
  lanIn: 'dnsseal_lan_in',
  wanOut: 'dnsseal_wan_out',
  lanOut: 'dnsseal_lan_out',
  in: 'dnsseal_in',
} as const;
export type ProgName = (typeof PROGS)[keyof typeof PROGS];

/** tc filter priority and handle used with the clsact fallback (fixed, so `replace` is idempotent). */
export const TC_PREF = 0x5e51;
export const TC_HANDLE = 1;

export class PinPaths {
  constructor(readonly root: string = DEFAULT_PIN_ROOT) {}
  get maps(): string {
    return `${this.root}/maps`;
  }
  get progs(): string {
    return `${this.root}/progs`;
  }
  get links(): string {
    return `${this.root}/links`;
  }
  /** A map of any object loaded into this root (MAPS, the intercept's ICPT_MAPS). */
  map(name: string): string {
    return `${this.maps}/${name}`;
  }
  prog(name: string): string {
    return `${this.progs}/${name}`;
  }
  link(name: string): string {
    return `${this.links}/${name}`;
  }
}

interface MountRow {
  source: string;
  target: string;
  fstype: string;
}

export function mounts(text: string = readFileSync('/proc/self/mounts', 'utf8')): MountRow[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [source = '', target = '', fstype = ''] = l.split(' ');
      return { source, target: target.replace(/\\040/g, ' '), fstype };
    });
}

/** True when `path` lies on a bpf filesystem. */
export function onBpffs(path: string, rows: MountRow[] = mounts()): boolean {
  const best = rows
    .filter((r) => path === r.target || path.startsWith(r.target.endsWith('/') ? r.target : `${r.target}/`))
    .sort((a, b) => b.target.length - a.target.length)[0];
  return best?.fstype === 'bpf';
}

/** Mounts bpffs at /sys/fs/bpf when the pin root is not on one yet, then creates the pin dirs. */
export function preparePinDirs(paths: PinPaths, log: Logger): void {
  if (!onBpffs(paths.root)) {
    if (!paths.root.startsWith(`${BPFFS_MOUNT}/`)) {
      throw new DnssealError('datapath', 'no_bpffs', `${paths.root} is not on a bpf filesystem (mount -t bpf bpf <dir>)`);
    }
    mkdirSync(BPFFS_MOUNT, { recursive: true });
    const r = Bun.spawnSync(['mount', '-t', 'bpf', 'bpf', BPFFS_MOUNT]);
    if (r.exitCode !== 0) {
      throw new DnssealError('datapath', 'no_bpffs', `mounting bpffs at ${BPFFS_MOUNT} failed: ${r.stderr.toString().trim()}`);
    }
    log.info('datapath: mounted bpffs', { path: BPFFS_MOUNT });
  }
  const euid = process.geteuid?.() ?? 0;
  for (const d of [paths.root, paths.maps, paths.progs, paths.links]) {
    mkdirSync(d, { recursive: true, mode: 0o755 });
    const problem = pinDirProblem(d, statSync(d), euid);
    if (problem) throw new DnssealError('datapath', 'pin_dir_not_ours', problem);
  }
}

/**
 * Whoever may write a pin directory may unlink the pins in it, and unlinking the last pin of a
 * link detaches its program: the leak guard would be gone. /sys/fs/bpf is often world-writable
 * (sticky), so anyone can create `<pin_root>` before dnsseal first starts. A pin directory must be
 * this process's own and writable by nobody else; anything else is refused, saying what to do.
 */
export function pinDirProblem(dir: string, st: { uid: number; mode: number }, euid: number): string | undefined {
  if (st.uid !== euid) {
    return `${dir} belongs to uid ${st.uid}, not to this process (uid ${euid}): its owner could remove dnsseal's pins and so detach the leak guard. Remove it (rm -r ${dir}, after checking what is in it) and start again`;
  }
  if ((st.mode & 0o022) !== 0) {
    return `${dir} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}): they could remove dnsseal's pins and so detach the leak guard. chmod go-w ${dir} and start again`;
  }
  return undefined;
}

/** The cgroup v2 mount to attach host-mode hooks to: /sys/fs/cgroup/unified or /sys/fs/cgroup, whichever is cgroup2. */
export function defaultCgroupPath(rows: MountRow[] = mounts()): string | undefined {
  const v2 = rows.filter((r) => r.fstype === 'cgroup2').map((r) => r.target);
  for (const pref of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) if (v2.includes(pref)) return pref;
  return v2[0];
}
