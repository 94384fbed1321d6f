/** Shared fixtures for the registry tests. */
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { Registry, type RegistryOptions } from '../../src/registry/registry.ts';
import type { ChannelHooks, Registration } from '../../src/registry/types.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

function channel(name: string, id: number, kind: 'tunnel' | 'peer'): ChannelSpec {
  return {
    name,
    id,
    mark: channelMark(id),
    protocol: 'ipsec',
    kind,
    gateway: kind === 'tunnel' ? '198.51.100.1' : undefined,
    identity: kind === 'peer' ? '%name' : 'hub.example',
    esp: 'aes256gcm16',
  };
}

export const HUB = channel('hub', 1, 'tunnel');
export const PARTNER = channel('partner', 2, 'peer');
export const OTHER = channel('other', 3, 'tunnel');
export const CHANNELS = [HUB, PARTNER, OTHER];

export const MIN_HOLD_MS = 60_000;
export const IDLE_MS = 300_000;

export function reg(over: Partial<Registration> & { addrs: string[] }): Registration {
  const queryName = over.queryName ?? over.names?.[0] ?? 'www.corp.example';
  return { group: 0, channel: HUB, names: [queryName], ttlS: 30, queryName, ...over };
}

/** Records hook calls; `gate` makes peerAdded wait until the test opens it. */
export class RecordingHooks implements ChannelHooks {
  added: string[] = [];
  removed: string[] = [];
  fail?: Error;
  /** Fail only for this address. */
  failFor?: string;
  private gates: Array<() => void> = [];
  gated = false;

  async peerAdded(ch: ChannelSpec, addr: string, name: string): Promise<void> {
    this.added.push(`${ch.name} ${addr} ${name}`);
    if (this.gated) await new Promise<void>((resolve) => this.gates.push(resolve));
    if (this.fail && (this.failFor === undefined || this.failFor === addr)) throw this.fail;
  }
  peerRemoved(ch: ChannelSpec, addr: string): void {
    this.removed.push(`${ch.name} ${addr}`);
  }
  /** Lets only the oldest waiting peerAdded go on. */
  openFirst(): void {
    this.gates.shift()?.();
  }
  open(): void {
    this.gated = false;
    for (const g of this.gates.splice(0)) g();
  }
}

export interface Rig {
  clock: FakeClock;
  dp: FakeDatapath;
  metrics: Metrics;
  hooks: RecordingHooks;
  registry: Registry;
}

export function rig(over: Partial<RegistryOptions> & { dpCapacity?: number } = {}): Rig {
  const clock = (over.clock as FakeClock | undefined) ?? new FakeClock();
  const dp = (over.datapath as FakeDatapath | undefined) ?? new FakeDatapath({ capacity: over.dpCapacity ?? 1024, clock });
  const metrics = over.metrics ?? new Metrics();
  const hooks = (over.hooks as RecordingHooks | undefined) ?? new RecordingHooks();
  const registry = new Registry({
    datapath: dp,
    clock,
    log: silentLogger,
    metrics,
    minHoldMs: MIN_HOLD_MS,
    idleMs: IDLE_MS,
    hooks,
    channels: CHANNELS,
    ...over,
  });
  return { clock, dp, metrics, hooks, registry };
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

export function addrsIn(dp: FakeDatapath): string[] {
  return dp
    .list()
    .map((e) => `${e.key.group}/${e.key.addr}`)
    .sort();
}
