/**
 * The relay's FlowRouter over the registry: an intercepted connection's original destination
 * → the registry entry of (the client's group, that address) → its channel, if that channel is a
 * TLS one, and the name the address was resolved from (the identity `%name` stands for).
 *
 * An address the registry does not hold, or holds under an IPsec channel, is not routed: the
 * relay resets the connection (nothing is ever relayed on the word of the interception alone).
 * A retired entry is still routed — like a retired IPsec tunnel entry it keeps its channel, and
 * the peer must still prove the name; an entry adopted after a restart has no name until an
 * answer names it again, so a `%name` channel resets its flows until then (`no_identity`).
 *
 * `TlsChannels` turns the configured tls ChannelSpecs and their loaded credentials into the
 * relay's TlsChannel, and is swapped whole on a reload.
 */
import { formatIP, parseIP } from '../policy/cidr.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { FlowRouter, InterceptedConn } from './relay-listener.ts';
import { DEFAULT_TLS_PORT, type Destination, type TlsChannel, type TlsCredentials } from './types.ts';

/** What the router needs of the registry (Registry.get). */
export interface EntryLookup {
  get(group: number, addr: string): { channel: string; names: string[] } | undefined;
}

/** Shown for adopted entries (registry ADOPTED_NAME): not a name. */
const NOT_A_NAME = /^\(/;

/** Canonical address text as the registry keys it; IPv4-mapped IPv6 (a dual-stack socket) as IPv4. */
export function canonicalAddr(addr: string): string | null {
  const t = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr)?.[1] ?? addr;
  const b = parseIP(t);
  return b ? formatIP(b) : null;
}

export class TlsChannels {
  private constructor(readonly byName: ReadonlyMap<string, TlsChannel>) {}

  /** The tls channels of `specs`; each needs its credentials (the config loader made sure). */
  static build(specs: readonly ChannelSpec[], creds: Readonly<Record<string, TlsCredentials>> | undefined): TlsChannels {
    const out = new Map<string, TlsChannel>();
    for (const s of specs) {
      if (s.protocol !== 'tls') continue;
      const c = creds?.[s.name];
      if (!c) throw new Error(`tls channel ${s.name} has no credentials (the config loader loads them)`);
      const ch: TlsChannel = { name: s.name, kind: s.kind, port: s.tlsPort ?? DEFAULT_TLS_PORT, identity: s.identity, credentials: c };
      if (s.gateway !== undefined) ch.gateway = s.gateway;
      out.set(s.name, ch);
    }
    return new TlsChannels(out);
  }

  get size(): number {
    return this.byName.size;
  }
}

export class RegistryRouter implements FlowRouter {
  constructor(
    private readonly entries: EntryLookup,
    /** The client group (table) of the connecting client's address (host mode: always 0). */
    private readonly groupOf: (clientAddr: string) => number,
    /** The current tls channels (a reload swaps them). */
    private readonly channels: () => TlsChannels,
  ) {}

  route(dst: Destination, conn: InterceptedConn): { channel: TlsChannel; name?: string } | null {
    const addr = canonicalAddr(dst.addr);
    const client = canonicalAddr(conn.peer.addr);
    if (addr === null || client === null) return null;
    const e = this.entries.get(this.groupOf(client), addr);
    if (!e) return null;
    const channel = this.channels().byName.get(e.channel);
    if (!channel) return null;
    const name = e.names.find((n) => !NOT_A_NAME.test(n));
    return name === undefined ? { channel } : { channel, name };
  }
}
