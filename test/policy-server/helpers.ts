/**
 * Shared pieces for the policy-server tests: figure 6's tables with modern ciphers, a server
 * on B1's UDP/TCP listeners at 127.0.0.1, loopback clients that send from a chosen 127.x
 * source address, and a "proxy side" that signs, verifies and registers like the pipeline will.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Config } from '../../src/config/types.ts';
import { StaticKeyring, parseTsigKeyFlag } from '../../src/dns/tsig-key.ts';
import { buildChannel } from '../../src/policy/channel.ts';
import { parseCondition } from '../../src/policy/condition.ts';
import { Policy } from '../../src/policy/policy.ts';
import type { Table } from '../../src/policy/types.ts';
import { startTcpListener } from '../../src/proxy/listener-tcp.ts';
import { startUdpListener } from '../../src/proxy/listener-udp.ts';
import type { Listener, QueryHandler } from '../../src/proxy/handler.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';
import type { Registration } from '../../src/registry/types.ts';
import type { Clock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ServerChannels, signQuery, verifyResponse, type PolicyVerdict } from '../../src/policy-server/proxy-side.ts';
import { PolicyServer, type PolicyServerState } from '../../src/policy-server/server.ts';
import { Zone } from '../../src/policy-server/zone.ts';
import * as dnsPacket from 'dns-packet';
import { settingDefaults } from '../../src/config/defaults.ts';

export const SECRET = 'aZFBb8ATM1SU/ydExglh5tJ2yM/5KvGnX8MeIxbKK7U=';
export const KEY = parseTsigKeyFlag(`dnsseal-test:hmac-sha256:${SECRET}`);
export const GW_KEY = parseTsigKeyFlag('lan-gateway:hmac-sha256:c2VjcmV0LW9mLXRoZS1sYW4tZ2F0ZXdheS0wMTIzNDU=');
export const keyring = new StaticKeyring([KEY, GW_KEY]);

/** Figure 6: table 501 = clients; 502–504 = name tables. 127.0.0.4 lands in 504 (no match). */
export const CLIENT_502 = '127.0.0.2';
export const CLIENT_503 = '127.0.0.3';
export const CLIENT_504 = '127.0.0.4';
export const KOJIMA = 'kojima.jinji.nec.com';
export const KOJIMA_ADDR = '198.51.100.7';

export const ZONE_TEXT = `$ORIGIN nec.com.
$TTL 300
@            SOA ns.nec.com. admin.nec.com. 1 3600 600 86400 300
@            NS    ns.nec.com.
ns           A     127.0.0.1
kojima.jinji A     ${KOJIMA_ADDR}
www.soumu    A     198.51.100.20
alias.jinji  CNAME kojima.jinji
`;

export function figure6Config(): Config {
  const channels = [
    buildChannel('hub-a', { kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub-a.nec.example', esp: 'aes256gcm16' }, 1),
    buildChannel('peer-b', { kind: 'peer', esp: 'chacha20poly1305' }, 2),
  ];
  const table = (id: string, rules: Array<[string, string]>): Table => ({
    id,
    group: Number(id),
    rules: rules.map(([p, ch], index) => ({ condition: parseCondition(p), channel: ch, index, source: 'figure6' })),
  });
  return {
    ...settingDefaults(),
    source: '<figure 6>',
    mode: 'host',
    listen: [],
    upstreams: [],
    datapath: 'none',
    lan: [],
    wan: [],
    control: '',
    logLevel: 'error',
    logFormat: 'logfmt',
    minHoldS: 60,
    idleS: 300,
    upstreamTimeoutMs: 2000,
    canary: 'nxdomain',
    channels,
    tables: [table('502', [['*.jinji.nec.com', 'hub-a']]), table('503', [['kojima.*', 'peer-b']]), table('504', [['*.soumu.nec.com', 'hub-a']])],
    clients: [
      { cidr: `${CLIENT_502}/32`, table: '502' },
      { cidr: `${CLIENT_503}/32`, table: '503' },
      { cidr: `${CLIENT_504}/32`, table: '504' },
    ],
    statics: [],
    tsigKeys: [KEY, GW_KEY],
    interceptPools: [],
  };
}

export function figure6State(over: Partial<PolicyServerState> = {}): PolicyServerState {
  return {
    policy: Policy.fromConfig(figure6Config()),
    keyring,
    trustedKeys: new Set([GW_KEY.name]),
    zone: Zone.parse(ZONE_TEXT, 'figure6.zone'),
    resolver: null,
    requireTsig: false,
    annotate: 'signed',
    fudgeS: 300,
    ...over,
  };
}

export interface Served {
  udp: Listener;
  tcp: Listener;
  close(): Promise<void>;
}

/** Serves `handle` on 127.0.0.1 (random ports) over UDP and TCP with B1's listeners. */
export async function serve(handle: QueryHandler): Promise<Served> {
  const counters = newProxyCounters();
  const udp = await startUdpListener({ hostname: '127.0.0.1', port: 0, handle, counters, log: silentLogger });
  // TCP on the same port number is not guaranteed free; a separate random port is fine here.
  const tcp = await startTcpListener({ hostname: '127.0.0.1', port: 0, handle, counters, log: silentLogger });
  return { udp, tcp, close: async () => void (await Promise.all([udp.close(), tcp.close()])) };
}

export function startServer(state: PolicyServerState, clock: Clock): PolicyServer {
  return new PolicyServer(state, { clock, log: silentLogger });
}

export type Transport = 'udp' | 'tcp';

/**
 * One exchange from `localAddress` (a 127.x address) to 127.0.0.1:port. The timeout only ends a
 * failing test (no caller expects silence), so it is generous for a loaded machine.
 */
export function ask(transport: Transport, port: number, msg: Uint8Array, localAddress = '127.0.0.1', timeoutMs = 5000): Promise<Uint8Array> {
  return transport === 'udp' ? udpAsk(port, msg, localAddress, timeoutMs) : tcpAsk(port, msg, localAddress, timeoutMs);
}

function udpAsk(port: number, msg: Uint8Array, localAddress: string, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`udp: no answer from 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(new Uint8Array(m));
    });
    sock.bind(0, localAddress, () => sock.send(msg, port, '127.0.0.1'));
  });
}

function tcpAsk(port: number, msg: Uint8Array, localAddress: string, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    const sock = net.connect({ host: '127.0.0.1', port, localAddress }, () => sock.write(frame(msg)));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`tcp: no answer from 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (d) => {
      const r = reader.push(new Uint8Array(d as Buffer));
      if (r.kind === 'frames' && r.frames.length > 0) {
        clearTimeout(timer);
        sock.destroy();
        resolve(r.frames[0]!);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A plain query with an OPT (the proxy always speaks EDNS upstream), optionally with ECS. */
export function makeQuery(name: string, opts: { id?: number; ecs?: Uint8Array; type?: dnsPacket.RecordType } = {}): Uint8Array {
  const options = opts.ecs ? [{ code: 8, data: Buffer.from(opts.ecs) }] : [];
  return new Uint8Array(
    dnsPacket.encode({
      type: 'query',
      id: opts.id ?? 0x4242,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: opts.type ?? 'A', name }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options } as unknown as dnsPacket.Answer],
    }),
  );
}

/**
 * What a proxy does with a policy-server upstream, minus the sockets it already has: sign,
 * send, verify, and register the verified decision (S105) — or register nothing.
 */
export class ProxySide {
  readonly registrations: Registration[] = [];
  readonly channels = new ServerChannels();
  last: PolicyVerdict | null = null;

  constructor(
    readonly clock: Clock,
    readonly localAddress: string,
    readonly keyName = KEY.name,
  ) {}

  async query(transport: Transport, port: number, name: string, opts: { ecs?: Uint8Array } = {}): Promise<PolicyVerdict> {
    const ctx = { keyring, keyName: this.keyName, clock: this.clock, channels: this.channels };
    const signed = signQuery(makeQuery(name, opts), ctx);
    const answer = await ask(transport, port, signed.wire, this.localAddress);
    const v = verifyResponse(answer, signed.mac, ctx);
    this.last = v;
    if (v.ok && v.decision?.channel) {
      const decoded = dnsPacket.decode(Buffer.from(v.unsigned));
      const addrs = (decoded.answers ?? []).filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => String((a as { data: string }).data));
      // Like the pipeline: only an answer with addresses registers anything.
      if (addrs.length > 0) this.registrations.push({ group: v.decision.group, channel: v.decision.channel, names: [name], addrs, ttlS: 300, queryName: name });
    }
    return v;
  }
}
