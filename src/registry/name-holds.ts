/**
 * The names holding an entry, each until its own hold runs out (monoMs). Nearly every entry is
 * held by one name, so that one sits in two fields of the record (`name`, `hold`) and a Map is
 * made only when a second name arrives (a CNAME chain, another name resolving to the address):
 * a Map with one name costs some 250 heap bytes, a third of what the whole entry costs otherwise.
 * Once the Map exists it keeps every name (`name` is then undefined); it goes back to the two
 * fields when pruning or a release leaves one name. Names keep the order they arrived in.
 */

/** The fields of an entry record these helpers read and write (see EntryRecord). */
export interface NameHolds {
  /** The only name holding the entry while it has one and `names` is undefined. */
  name: string | undefined;
  /** `name`'s hold, monoMs (0 while there is no name). */
  hold: number;
  /** Every name → its hold, once a second name arrived (`name` is then undefined). */
  names: Map<string, number> | undefined;
}

/** `name` holds the entry until `until` at least (a later answer never shortens a hold). */
export function holdName(h: NameHolds, name: string, until: number): void {
  if (h.names === undefined) {
    if (h.name === undefined) {
      h.name = name;
      h.hold = until;
      return;
    }
    if (h.name === name) {
      if (h.hold < until) h.hold = until;
      return;
    }
    h.names = new Map([[h.name, h.hold]]);
    h.name = undefined;
    h.hold = 0;
  }
  const t = h.names.get(name);
  if (t === undefined || t < until) h.names.set(name, until);
}

/** Each of `names` holds the entry until `until` at least. */
export function holdNames(h: NameHolds, names: readonly string[], until: number): void {
  for (let i = 0; i < names.length; i++) holdName(h, names[i]!, until);
}

/** How many names hold the entry. */
export function nameCount(h: NameHolds): number {
  if (h.names !== undefined) return h.names.size;
  return h.name === undefined ? 0 : 1;
}

/** The names, in the order they arrived. */
export function namesOf(h: NameHolds): string[] {
  if (h.names !== undefined) return [...h.names.keys()];
  return h.name === undefined ? [] : [h.name];
}

/** The latest hold of any name, or 0 when no name holds the entry. */
export function expiryOf(h: NameHolds): number {
  if (h.names === undefined) return h.name === undefined ? 0 : h.hold;
  let max = 0;
  for (const t of h.names.values()) if (t > max) max = t;
  return max;
}

/** Lets go of `name` (nothing when it does not hold the entry). */
export function releaseName(h: NameHolds, name: string): void {
  if (h.names !== undefined) {
    h.names.delete(name);
    unfold(h);
  } else if (h.name === name) {
    clearNames(h);
  }
}

/** No name holds the entry any more. */
export function clearNames(h: NameHolds): void {
  h.name = undefined;
  h.hold = 0;
  h.names = undefined;
}

/** Every hold that runs past `now` ends at `now` (retirement). */
export function endHolds(h: NameHolds, now: number): void {
  if (h.names === undefined) {
    if (h.name !== undefined && h.hold > now) h.hold = now;
    return;
  }
  for (const [n, t] of h.names) if (t > now) h.names.set(n, now);
}

/**
 * Drops names whose hold ran out — unless that would leave none: an entry kept alive only by
 * traffic still shows the names that brought it in.
 */
export function pruneNames(h: NameHolds, nowMs: number): void {
  if (h.names === undefined) return;
  let live = 0;
  for (const t of h.names.values()) if (t > nowMs) live++;
  if (live === 0 || live === h.names.size) return;
  for (const [n, t] of h.names) if (t <= nowMs) h.names.delete(n);
  unfold(h);
}

/** Back to the two fields when the Map is down to one name (or none). */
function unfold(h: NameHolds): void {
  if (h.names === undefined || h.names.size > 1) return;
  const names = h.names;
  clearNames(h);
  for (const [name, hold] of names) {
    h.name = name;
    h.hold = hold;
  }
}
