/**
 * The tls channel interception's pinned maps (bpf/lib/tls_maps.h): the relay's address and
 * process for the programs, and the original destinations the sockops program recorded, read by
 * the relay with one in-process bpf() lookup per accepted connection.
 */
import { DnssealError } from '../../util/errors.ts';
import { formatIP } from '../../util/ip.ts';
import type { SockAddr, TlsInterception } from '../datapath.ts';
import { CounterValLayout, FAMILY_V4, sumCounterVals } from '../layout.ts';
import { decodeTlsAddr, encodeTlsAddr, encodeTlsConfig, TLS_CNT_MAX, TLS_COUNTERS, TlsAddrLayout, TlsConfigLayout, type RawTlsConfig } from '../tls-layout.ts';
import { BPF_ANY, type Bpf, stable } from './bpf-syscall.ts';
import { PerCpuArray } from './lib/percpu.ts';
import { openPinnedMaps } from './lib/pinned-object.ts';
import { keyAddrOf } from './maps.ts';
import { listenerNetnsCookie, makeListenerTransparent } from './relay-socket.ts';
import { type PinPaths, TLS_MAPS } from './pins.ts';

/**
 * The relay as the programs need it: an IPv4 socket is sent to relay4, an IPv6 one to relay6.
 * A relay on IPv4 serves IPv6 sockets at its IPv4-mapped address (refused by a V6ONLY socket:
 * fail closed); a relay on IPv6 only has no IPv4 address (IPv4 connects are refused); a
 * wildcard listener is reached at the loopback address of each family it covers.
 */
export function relayConfig(listen: SockAddr, pid: number): RawTlsConfig {
  const a = keyAddrOf(listen.addr).addr;
  const text = formatIP(a.bytes);
  const cfg: RawTlsConfig = { relayTgid: pid };
  if (a.family === FAMILY_V4) {
    const v4 = text === '0.0.0.0' ? keyAddrOf('127.0.0.1').addr : a;
    cfg.relay4 = { addr: v4, port: listen.port };
    cfg.relay6 = { addr: mapped(v4.bytes), port: listen.port };
  } else if (text === '::') {
    cfg.relay4 = { addr: keyAddrOf('127.0.0.1').addr, port: listen.port };
    cfg.relay6 = { addr: keyAddrOf('::1').addr, port: listen.port };
  } else {
    cfg.relay6 = { addr: a, port: listen.port };
  }
  return cfg;
}

function mapped(v4: Uint8Array): { family: 6; bytes: Uint8Array } {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(v4, 12);
  return { family: 6, bytes: b };
}

export class EbpfTlsMaps implements TlsInterception {
  private readonly fds: Record<keyof typeof TLS_MAPS, number>;
  private readonly k = stable(TlsAddrLayout.size);
  private readonly v = stable(TlsAddrLayout.size);
  private readonly counterArray: PerCpuArray;

  /**
   * `steer`: the LAN program hands connections to the relay's socket (gateway and intercept
   * modes), so the relay's listener is made transparent when it is announced.
   */
  constructor(
    private readonly bpf: Bpf,
    paths: PinPaths,
    private readonly steer = false,
  ) {
    this.fds = openPinnedMaps(bpf, Object.fromEntries(Object.entries(TLS_MAPS).map(([k, name]) => [k, paths.map(name)])) as Record<keyof typeof TLS_MAPS, string>);
    this.counterArray = new PerCpuArray(bpf, this.fds.counters, CounterValLayout.size);
  }

  setRelay(relay: { listen: SockAddr; pid: number } | null): void {
    if (relay && this.steer) makeListenerTransparent(relay.listen.port);
    const k = stable(4);
    const v = stable(TlsConfigLayout.size);
    encodeTlsConfig(relay ? { ...relayConfig(relay.listen, relay.pid), netnsCookie: listenerNetnsCookie(relay.listen.port) } : { relayTgid: 0 }, v.buf);
    this.bpf.update(this.fds.config, k, v, BPF_ANY);
  }

  originalDst(peer: SockAddr): SockAddr | null {
    let addr;
    try {
      addr = keyAddrOf(peer.addr).addr; // IPv4-mapped folds to IPv4, as the programs key it
    } catch (err) {
      throw new DnssealError('datapath', 'bad_address', `tls: peer ${peer.addr}: ${(err as Error).message}`);
    }
    encodeTlsAddr({ addr, port: peer.port }, this.k.buf);
    if (!this.bpf.lookup(this.fds.orig, this.k, this.v)) return null;
    const o = decodeTlsAddr(this.v.buf);
    return { addr: formatIP(o.addr.bytes), port: o.port };
  }

  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < TLS_CNT_MAX; i++) {
      const name = TLS_COUNTERS[i];
      const v = name ? this.counterArray.get(i) : undefined;
      if (name && v) out[name] = Number(sumCounterVals(v, this.counterArray.ncpu).packets);
    }
    return out;
  }

  close(): void {
    for (const fd of Object.values(this.fds)) this.bpf.close(fd);
  }
}
