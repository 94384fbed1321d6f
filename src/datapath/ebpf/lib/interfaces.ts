/**
 * Which network interfaces a set of tc programs goes on: a list of names (configured, or
 * computed on every poll, like the default-route interfaces), or every interface of the network
 * namespace except some (`lo` and the LAN ones, say). Read without spawning anything.
 */
import { readFileSync } from 'node:fs';
import { DnssealError, errorMessage } from '../../../util/errors.ts';

export type InterfaceSet =
  /** These names, asked again on every poll; a name that does not exist yet is reported absent. */
  | { readonly kind: 'named'; readonly names: () => readonly string[] }
  /** Every interface of this network namespace but these; nothing is ever absent. */
  | { readonly kind: 'allExcept'; readonly except: readonly string[] };

/** Exactly these interfaces (a function is asked again on every poll). */
export function namedInterfaces(names: readonly string[] | (() => readonly string[])): InterfaceSet {
  const list = typeof names === 'function' ? names : () => names;
  return { kind: 'named', names: list };
}

/** Every interface of the network namespace except `except` (name `lo` here to keep it out). */
export function allInterfacesExcept(except: readonly string[]): InterfaceSet {
  return { kind: 'allExcept', except: [...except] };
}

/** The interfaces a set covers now, given the namespace's interface names (read only when needed). */
export function resolveInterfaces(set: InterfaceSet, present: () => readonly string[]): string[] {
  if (set.kind === 'named') return [...new Set(set.names())];
  const skip = new Set(set.except);
  return present().filter((n) => !skip.has(n));
}

/**
 * Interface names in /proc/net/dev text (two header lines, then `name: counters…` per interface).
 * A name cannot hold `:` (dev_valid_name), so the first colon ends it.
 */
export function parseProcNetDev(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0 || line.includes('|')) continue;
    const name = line.slice(0, colon).trim();
    if (name && !out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * The interfaces of the CALLER's network namespace. /proc/net follows the reading process's
 * namespace (sysfs's /sys/class/net would show the namespace sysfs was mounted in, which is not
 * this one under `nsenter --net`).
 */
export function listInterfaces(path = '/proc/net/dev'): string[] {
  try {
    return parseProcNetDev(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DnssealError('datapath', 'interfaces', `cannot list the network interfaces from ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
