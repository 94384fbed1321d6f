/**
 * The `none` backend: no kernel at all. It records what the registry asks for in an
 * in-memory table so `dnsseal list` and the conformance suite work, but nothing is
 * protected — the factory logs that loudly when it picks this backend.
 */
import type { ChannelRowInput, Datapath, DestEntry, DestKey, DestValue } from './datapath.ts';
import { destKeyString } from './datapath.ts';

/** In-memory (group, addr) → value table shared by the `none` and `fake` backends. */
export class MemoryTable {
  private readonly rows = new Map<string, DestEntry>();

  get size(): number {
    return this.rows.size;
  }
  has(key: DestKey): boolean {
    return this.rows.has(destKeyString(key));
  }
  get(key: DestKey): DestEntry | undefined {
    return this.rows.get(destKeyString(key));
  }
  put(key: DestKey, value: DestValue): void {
    const k = destKeyString(key);
    const prev = this.rows.get(k);
    // Copies, so a caller mutating its objects later cannot change the "kernel" state.
    this.rows.set(k, { key: { ...key }, value: { ...value }, lastSeenMs: prev?.lastSeenMs });
  }
  delete(key: DestKey): void {
    this.rows.delete(destKeyString(key));
  }
  list(): DestEntry[] {
    return [...this.rows.values()].map((e) => ({ key: { ...e.key }, value: { ...e.value }, lastSeenMs: e.lastSeenMs }));
  }
  clear(): void {
    this.rows.clear();
  }
}

export class NoneDatapath implements Datapath {
  readonly kind: string = 'none';
  protected readonly table = new MemoryTable();
  /** Last client-group and channel tables handed over (inspected by tests and `status`). */
  clientGroups: { cidr: string; group: number }[] = [];
  channels: ChannelRowInput[] = [];

  upsert(key: DestKey, value: DestValue): void {
    this.table.put(key, value);
  }
  remove(key: DestKey): void {
    this.table.delete(key);
  }
  list(): DestEntry[] {
    return this.table.list();
  }
  lastSeen(key: DestKey): number | undefined {
    return this.table.get(key)?.lastSeenMs;
  }
  setClientGroups(entries: { cidr: string; group: number }[]): void {
    this.clientGroups = entries.map((e) => ({ ...e }));
  }
  setChannels(channels: ChannelRowInput[]): void {
    this.channels = channels.map((c) => ({ ...c }));
  }
  health(): string | undefined {
    return undefined;
  }
  close(): void {
    // Nothing to release; the table stays readable like a pinned map outlives the process.
  }
}
