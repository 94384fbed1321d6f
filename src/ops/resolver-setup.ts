/**
 * Points the system resolver at dnsseal (`dnsseal resolver-setup`), or takes that back.
 *
 * Two back ends, chosen by what the machine runs:
 * - systemd-resolved: a drop-in `etc/systemd/resolved.conf.d/dnsseal.conf` with `DNS=` our
 *   address and `Domains=~.` (every domain goes to it, also past per-link DNS from DHCP).
 *   resolved's own stub listens on 127.0.0.53:53 (and 127.0.0.54:53 since systemd 248), so
 *   dnsseal cannot listen there: a conflicting address is refused and 127.0.0.153 proposed.
 * - plain `etc/resolv.conf`: backed up to `etc/resolv.conf.dnsseal-backup` (a symlink is kept
 *   as a symlink), rewritten to `nameserver ADDR` keeping `search`/`options`; `--undo` restores it
 *   (where there was none, `--undo` removes the one written).
 * A wildcard listen address (0.0.0.0, ::) is pointed at as its loopback address.
 *
 * Everything is relative to `root` so tests run on a temp tree, never on the real /etc.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { formatHostPort, parseHostPort, type HostPort } from '../config/address.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';

export type ResolverBackend = 'systemd-resolved' | 'resolv.conf';

/** Where dnsseal is proposed to listen when resolved holds the usual stub addresses. */
export const RESOLVED_FREE_ADDRESS = '127.0.0.153';
/** Addresses systemd-resolved's stub listeners own (port 53). */
export const RESOLVED_STUB_ADDRESSES = ['127.0.0.53', '127.0.0.54'];

export const DROP_IN = 'etc/systemd/resolved.conf.d/dnsseal.conf';
export const RESOLV_CONF = 'etc/resolv.conf';
export const BACKUP = 'etc/resolv.conf.dnsseal-backup';
const MARKER = '# written by dnsseal resolver-setup';

export interface ResolverPlan {
  backend: ResolverBackend;
  /** The address the system resolver will send queries to (IP; the port is 53 unless resolved's DNS= says otherwise). */
  address: string;
  /** Files that would be written, relative to root, with their content. */
  writes: Array<{ path: string; content: string }>;
  /** Human explanation, one line each. */
  notes: string[];
}

export class ResolverSetupError extends DnssealError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('resolver-setup', code, message, options);
  }
}

const at = (root: string, rel: string) => join(resolve(root), rel);

/** systemd-resolved runs (its runtime dir exists) or resolv.conf is its stub symlink. */
export function detectBackend(root: string): ResolverBackend {
  if (existsSync(at(root, 'run/systemd/resolve'))) return 'systemd-resolved';
  try {
    if (lstatSync(at(root, RESOLV_CONF)).isSymbolicLink() && readlinkSync(at(root, RESOLV_CONF)).includes('systemd/resolve/')) return 'systemd-resolved';
  } catch {
    /* no resolv.conf */
  }
  return 'resolv.conf';
}

/** `ADDR` or `ADDR:PORT` of dnsseal's listener (port 53 when absent). */
function parseListen(listen: string): HostPort {
  try {
    return parseHostPort(listen, 53);
  } catch (err) {
    throw new ResolverSetupError('bad_listen', `listen address ${JSON.stringify(listen)}: ${errorMessage(err)}`, { cause: err });
  }
}

function nameservers(text: string): string[] {
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** What `--apply` would do for dnsseal listening on `listen`; changes nothing. */
export function planResolverSetup(root: string, listen: string, backend: ResolverBackend = detectBackend(root)): ResolverPlan {
  const hp = parseListen(listen);
  const notes: string[] = [];
  // a wildcard listen address answers on loopback too; the resolver needs an address to send to
  const loopback = hp.address === '0.0.0.0' ? '127.0.0.1' : hp.address === '::' ? '::1' : undefined;
  if (loopback && backend === 'systemd-resolved' && hp.port === 53) {
    throw new ResolverSetupError(
      'address_conflict',
      `systemd-resolved runs here and its stub listeners own ${RESOLVED_STUB_ADDRESSES.join(' and ')} port 53, so dnsseal cannot listen on ${formatHostPort(hp)}. ` +
        `Run dnsseal on another loopback address (--listen ${RESOLVED_FREE_ADDRESS}:53, or listen: [${RESOLVED_FREE_ADDRESS}:53] in the config) and run resolver-setup again with --listen ${RESOLVED_FREE_ADDRESS}:53`,
    );
  }
  if (loopback) {
    notes.push(`dnsseal listens on every address (${hp.address}); the resolver is pointed at its loopback address ${loopback}.`);
    hp.address = loopback;
  }
  const ip = hp.address;
  if (backend === 'systemd-resolved') {
    if (hp.port === 53 && RESOLVED_STUB_ADDRESSES.includes(ip)) {
      throw new ResolverSetupError(
        'address_conflict',
        `systemd-resolved runs here and its stub listeners own ${RESOLVED_STUB_ADDRESSES.join(' and ')} port 53, so dnsseal cannot listen on ${ip}:53. ` +
          `Run dnsseal on another loopback address (--listen ${RESOLVED_FREE_ADDRESS}:53, or listen: [${RESOLVED_FREE_ADDRESS}:53] in the config) and run resolver-setup again with --listen ${RESOLVED_FREE_ADDRESS}:53`,
      );
    }
    const upstream = readText(at(root, 'run/systemd/resolve/resolv.conf'));
    notes.push(
      `systemd-resolved detected: it stays the system's stub on 127.0.0.53 and forwards every domain (Domains=~.) to dnsseal on ${formatHostPort(hp)}.`,
      `resolved's own stub addresses (${RESOLVED_STUB_ADDRESSES.join(', ')}) cannot be dnsseal's listen address; ${ip} is free of them.`,
      'dnsseal must not take its upstream from /etc/resolv.conf here (that is resolved itself): set upstreams: in its config' +
        (upstream && nameservers(upstream).length ? ` (resolved's current upstreams: ${nameservers(upstream).join(', ')})` : '') +
        '.',
      'Takes effect when resolved re-reads its configuration: systemctl restart systemd-resolved (done by --apply on the real root).',
    );
    return {
      backend,
      address: ip,
      // DNS= takes ADDR:PORT (systemd 246+); port 53 is written as the bare address
      writes: [{ path: DROP_IN, content: `${MARKER}; remove with: dnsseal resolver-setup --undo\n[Resolve]\nDNS=${hp.port === 53 ? ip : formatHostPort(hp)}\nDomains=~.\n` }],
      notes,
    };
  }
  if (hp.port !== 53) {
    throw new ResolverSetupError('bad_listen', `dnsseal listens on port ${hp.port}, but resolv.conf has no port (always 53): listen on ${ip}:53`);
  }
  const existing = readText(at(root, RESOLV_CONF));
  const current = existing ?? '';
  const kept = current.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  const old = nameservers(current).filter((n) => n !== ip);
  notes.push(
    existing === undefined && !lstatExists(at(root, RESOLV_CONF))
      ? `plain /etc/resolv.conf: there is none; one is written with "nameserver ${ip}"; --undo removes it.`
      : `plain /etc/resolv.conf: backed up to /${BACKUP}, then "nameserver ${ip}" (search/options lines kept); --undo restores it.`,
    old.length
      ? `dnsseal then cannot take its upstream from /etc/resolv.conf: set upstreams: in its config, e.g. "default: ${old[0]}" (the nameservers now: ${old.join(', ')}).`
      : 'dnsseal then cannot take its upstream from /etc/resolv.conf: set upstreams: in its config.',
    'If a network manager (NetworkManager, dhclient, resolvconf) rewrites /etc/resolv.conf, configure it instead, or this change will be undone.',
  );
  return {
    backend,
    address: ip,
    writes: [{ path: RESOLV_CONF, content: `${MARKER}; undo with: dnsseal resolver-setup --undo\nnameserver ${ip}\n${kept.map((l) => l + '\n').join('')}` }],
    notes,
  };
}

/** Carries out a plan. Returns the lines of what was done. Idempotent. */
export function applyResolverPlan(root: string, plan: ResolverPlan): string[] {
  const done: string[] = [];
  for (const w of plan.writes) {
    const path = at(root, w.path);
    if (readText(path) === w.content) {
      done.push(`/${w.path} already points at ${plan.address}`);
      continue;
    }
    if (w.path === RESOLV_CONF && lstatExists(path)) {
      if (readText(path)?.startsWith(MARKER)) {
        rmSync(path); // ours from an earlier run, for another address
      } else {
        if (lstatExists(at(root, BACKUP))) {
          throw new ResolverSetupError('backup_exists', `/${BACKUP} exists already and /${RESOLV_CONF} is not dnsseal's: run --undo or remove the backup first`);
        }
        renameSync(path, at(root, BACKUP)); // a symlink stays a symlink
        done.push(`backed up /${w.path} to /${BACKUP}`);
      }
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, w.content, { mode: 0o644 });
    done.push(`wrote /${w.path}`);
  }
  return done;
}

/** Takes back what `--apply` did: the drop-in goes, resolv.conf comes back from the backup. */
export function undoResolverSetup(root: string): string[] {
  const done: string[] = [];
  const dropIn = at(root, DROP_IN);
  const d = readText(dropIn);
  if (d !== undefined) {
    if (!d.startsWith(MARKER)) throw new ResolverSetupError('not_ours', `/${DROP_IN} was not written by dnsseal; remove it by hand`);
    rmSync(dropIn);
    done.push(`removed /${DROP_IN}`);
  }
  const backup = at(root, BACKUP);
  if (lstatExists(backup)) {
    const cur = at(root, RESOLV_CONF);
    const ours = readText(cur)?.startsWith(MARKER) ?? !lstatExists(cur);
    if (!ours) throw new ResolverSetupError('not_ours', `/${RESOLV_CONF} was changed since dnsseal wrote it; the original is in /${BACKUP}`);
    rmSync(cur, { force: true });
    renameSync(backup, cur);
    done.push(`restored /${RESOLV_CONF} from /${BACKUP}`);
  } else if (readText(at(root, RESOLV_CONF))?.startsWith(MARKER)) {
    // there was no resolv.conf to back up when --apply wrote this one: none again
    rmSync(at(root, RESOLV_CONF));
    done.push(`removed /${RESOLV_CONF} (dnsseal wrote it where there was none)`);
  }
  if (done.length === 0) done.push('nothing to undo: no dnsseal drop-in and no resolv.conf backup');
  return done;
}

/** Whether anything (a dangling symlink too) is at `path`. */
export function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
