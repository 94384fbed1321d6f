/**
 * Test doubles for the proxy: a policy that protects names by suffix, and a registry that
 * records every registration with the order it happened in (so tests can prove S105 ran
 * before the client had the answer) and can be told to fail.
 */
import type { PolicyApi } from '../../src/proxy/pipeline.ts';
import type { ChannelSpec, Decision } from '../../src/policy/types.ts';
import type { Registration, RegistryApi, RegistryEntry } from '../../src/registry/types.ts';
import { DnssealError } from '../../src/util/errors.ts';

export const HUB: ChannelSpec = {
  name: 'hub',
  id: 1,
  mark: 0x5e510001,
  protocol: 'ipsec',
  kind: 'tunnel',
  gateway: '192.0.2.1',
  identity: 'hub.example',
  esp: 'aes256gcm16',
};

/** Protects `suffix` and its subdomains; `upstreams` maps a suffix to a named upstream. */
export class SuffixPolicy implements PolicyApi {
  constructor(
    private readonly protect: string[],
    private readonly upstreams: Record<string, string> = {},
  ) {}
  private matches(name: string, suffix: string): boolean {
    return name === suffix || name.endsWith('.' + suffix);
  }
  decide(_clientIp: string, names: string[]): Decision {
    for (const n of names) {
      for (const s of this.protect) {
        if (this.matches(n, s)) {
          return { table: 'default', group: 0, rule: null, channel: HUB, upstream: null, matchedName: n };
        }
      }
    }
    return { table: 'default', group: 0, rule: null, channel: null, upstream: null };
  }
  preDecide(_clientIp: string, qname: string): Decision {
    for (const [s, up] of Object.entries(this.upstreams)) {
      if (this.matches(qname, s)) return { table: 'default', group: 0, rule: null, channel: null, upstream: up };
    }
    return { table: 'default', group: 0, rule: null, channel: null, upstream: null };
  }
}

/** A global sequence shared by the registry double and test clients: who came first. */
export class EventLog {
  private seq = 0;
  readonly events: Array<{ seq: number; what: string; detail?: unknown }> = [];
  note(what: string, detail?: unknown): number {
    const seq = ++this.seq;
    this.events.push({ seq, what, detail });
    return seq;
  }
}

export class RecordingRegistry implements RegistryApi {
  readonly registrations: Array<Registration & { seq: number }> = [];
  failWith: DnssealError | null = null;
  /** Delay before resolving (proves the answer waits for it). */
  delayMs = 0;
  constructor(private readonly events = new EventLog()) {}
  async register(reg: Registration): Promise<void> {
    if (this.delayMs) await Bun.sleep(this.delayMs);
    if (this.failWith) throw this.failWith;
    this.registrations.push({ ...reg, seq: this.events.note('registered', reg.addrs) });
  }
  list(): RegistryEntry[] {
    return this.registrations.flatMap((r) =>
      r.addrs.map((addr) => ({ group: r.group, addr, channel: r.channel.name, names: r.names, expiresMs: 0, static: false })),
    );
  }
}

export function mapFull(): DnssealError {
  return new DnssealError('datapath', 'map_full', 'map full');
}
