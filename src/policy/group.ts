/**
 * Table id → kernel group number (u32), stable across restarts and reloads so pinned map
 * entries stay meaningful: `default` → 0, a numeric id → itself, any other name → FNV-1a
 * with the top bit set (keeps names clear of the small numbers people use as ids).
 */

export const DEFAULT_TABLE = 'default';

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  const bytes = new TextEncoder().encode(text);
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Throws an Error naming the problem when the id cannot be a table id. */
export function tableGroup(id: string): number {
  if (id === DEFAULT_TABLE) return 0;
  if (/^[0-9]+$/.test(id)) {
    const n = Number(id);
    if (n === 0) throw new Error(`table id 0 is reserved for "${DEFAULT_TABLE}"`);
    if (n > 0xffffffff) throw new Error(`table id ${id} does not fit in 32 bits`);
    return n;
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) {
    throw new Error(`table id "${id}" must be a number or a name of letters, digits, "_", "-", "."`);
  }
  return (fnv1a32(id) | 0x80000000) >>> 0;
}

/** Assigns groups to every id; throws if two different ids land on one number. */
export function assignGroups(ids: readonly string[]): Map<string, number> {
  const byGroup = new Map<number, string>();
  const out = new Map<string, number>();
  for (const id of ids) {
    const g = tableGroup(id);
    const other = byGroup.get(g);
    if (other !== undefined && other !== id) {
      throw new Error(`table ids "${other}" and "${id}" map to the same group number ${g}; rename one of them`);
    }
    byGroup.set(g, id);
    out.set(id, g);
  }
  return out;
}
