/**
 * An in-memory charon: the server side of VICI on a real unix socket, for unit tests.
 * It speaks the same wire format through the same codec and answers the commands dnsseal
 * uses with charon 5.9.8's own error strings (checked by the shared suite, which runs
 * against this fake and against real charon). It negotiates nothing: `outcome` decides
 * what an `initiate` does, so tests can script up / no proposal / auth failure / silence.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import {
  decodePacket,
  encodeFrame,
  encodePacket,
  FrameReader,
  PacketType,
  type ViciMessage,
  type ViciPacket,
} from './vici-codec.ts';
import { FAKE_KNOWN_EVENTS, validateConn } from './fake-charon-config.ts';

/** What an `initiate` of a connection does in the fake. */
export type FakeOutcome =
  | 'up' //           IKE_SA and CHILD_SA established
  | 'no-proposal' //  IKE_SA established, CHILD_SA refused (what this machine's kernel gives)
  | 'auth-failed' //  peer could not prove its identity: no SA at all
  | 'unreachable'; // nothing answers: the initiate runs into its timeout

interface FakeSa {
  ike: string;
  uniqueid: number;
  state: 'CONNECTING' | 'ESTABLISHED';
  children: Map<string, { uniqueid: number; mode: string }>;
}

interface Client {
  sock: Socket;
  frames: FrameReader;
  events: Set<string>;
  chain: Promise<void>;
}

const ok: ViciMessage = { success: 'yes' };
const fail = (errmsg: string): ViciMessage => ({ success: 'no', errmsg });

export class FakeCharon {
  readonly conns = new Map<string, ViciMessage>();
  readonly installed = new Set<string>();
  readonly sas = new Map<string, FakeSa>();
  readonly certs: string[] = [];
  /** Every command name received, in order (tests assert on it). */
  readonly commands: string[] = [];
  /** Decides what `initiate` does for an IKE config; default: everything comes up. */
  outcome: (ike: string, conn: ViciMessage) => FakeOutcome = () => 'up';
  /** When set, commands are read but never answered (a wedged charon). */
  stalled = false;
  /** charon's errmsg for a `load-conn` of this connection (a refusal the config check does not model), or null. */
  refuseConn: (name: string) => string | null = () => null;

  private server: Server | null = null;
  private readonly clients = new Set<Client>();
  private nextId = 1;

  private constructor(readonly socketPath: string) {}

  static async start(socketPath: string): Promise<FakeCharon> {
    const f = new FakeCharon(socketPath);
    await f.listen();
    return f;
  }

  /** Drops every client and forgets all state, like a charon that crashed and came back. */
  async restart(): Promise<void> {
    await this.stop();
    this.conns.clear();
    this.installed.clear();
    this.sas.clear();
    await this.listen();
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.sock.destroy();
    this.clients.clear();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    rmSync(this.socketPath, { force: true });
  }

  private listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    const server = createServer((sock) => this.accept(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
  }

  private accept(sock: Socket): void {
    const c: Client = { sock, frames: new FrameReader(), events: new Set(), chain: Promise.resolve() };
    this.clients.add(c);
    sock.on('close', () => this.clients.delete(c));
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const seg of c.frames.push(new Uint8Array(chunk))) {
          const p = decodePacket(seg);
          // One request at a time per client, as charon does.
          c.chain = c.chain.then(() => this.handle(c, p)).catch(() => void sock.destroy());
        }
      } catch {
        sock.destroy(); // charon drops a client that sends garbage
      }
    });
  }

  private send(c: Client, p: ViciPacket): void {
    if (!c.sock.destroyed) c.sock.write(encodeFrame(encodePacket(p)));
  }

  private emit(event: string, message: ViciMessage, only?: Client): void {
    for (const c of only ? [only] : this.clients) if (c.events.has(event)) this.send(c, { type: PacketType.EVENT, name: event, message });
  }

  private async handle(c: Client, p: ViciPacket): Promise<void> {
    switch (p.type) {
      case PacketType.EVENT_REGISTER:
      case PacketType.EVENT_UNREGISTER:
        if (!FAKE_KNOWN_EVENTS.has(p.name)) return this.send(c, { type: PacketType.EVENT_UNKNOWN });
        if (p.type === PacketType.EVENT_REGISTER) c.events.add(p.name);
        else c.events.delete(p.name);
        return this.send(c, { type: PacketType.EVENT_CONFIRM });
      case PacketType.CMD_REQUEST: {
        this.commands.push(p.name);
        if (this.stalled) return new Promise<void>((r) => c.sock.once('close', () => r()));
        const res = await this.command(c, p.name, p.message);
        if (res === null) return this.send(c, { type: PacketType.CMD_UNKNOWN });
        return this.send(c, { type: PacketType.CMD_RESPONSE, message: res });
      }
      default:
        c.sock.destroy(); // a server never receives replies
    }
  }

  private async command(c: Client, cmd: string, m: ViciMessage): Promise<ViciMessage | null> {
    const str = (k: string) => (typeof m[k] === 'string' ? (m[k] as string) : undefined);
    switch (cmd) {
      case 'version':
        return { daemon: 'charon', version: '5.9.8', sysname: 'Linux', release: 'fake', machine: 'fake' };
      case 'load-conn': {
        for (const [name, v] of Object.entries(m)) {
          if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return fail(`invalid value for: ${name}, config discarded`);
          const err = validateConn(v) ?? this.refuseConn(name);
          if (err) return fail(err);
          this.conns.set(name, v);
        }
        return ok;
      }
      case 'unload-conn': {
        const name = str('name');
        if (!name) return fail('unload: missing connection name to unload');
        if (!this.conns.has(name)) return fail(`unload: connection '${name}' not found`);
        for (const child of this.childNames(name)) this.installed.delete(child);
        this.conns.delete(name);
        return ok;
      }
      case 'get-conns':
        return { conns: [...this.conns.keys()] };
      case 'install': {
        const child = str('child') ?? '';
        if (!this.findChild(child, str('ike'))) return fail('configuration name not found');
        this.installed.add(child);
        return ok;
      }
      case 'uninstall': {
        const child = str('child') ?? '';
        if (!this.installed.delete(child)) return fail(`policy '${child}' not found`);
        return ok;
      }
      case 'initiate':
        return this.initiate(c, str('child') ?? '', str('ike'), Number(str('timeout') ?? '0'));
      case 'terminate':
        return this.terminate(str('ike'), str('child'));
      case 'list-sas':
        for (const sa of this.sas.values()) if (!str('ike') || str('ike') === sa.ike) this.emit('list-sa', { [sa.ike]: this.saView(sa) }, c);
        return {};
      case 'list-conns':
        for (const [name, conn] of this.conns) if (!str('ike') || str('ike') === name) this.emit('list-conn', { [name]: connView(conn) }, c);
        return {};
      case 'load-cert':
      case 'load-key': {
        const data = m.data;
        const text = typeof data === 'string' ? data : data instanceof Uint8Array ? new TextDecoder().decode(data) : '';
        if (!text.includes('-----BEGIN')) return fail(cmd === 'load-cert' ? 'parsing X509 certificate failed' : `parsing ${String(m.type).toUpperCase()} private key failed`);
        this.certs.push(text);
        return ok;
      }
      default:
        return null;
    }
  }

  private childNames(ike: string): string[] {
    const children = this.conns.get(ike)?.children;
    return children && typeof children === 'object' && !Array.isArray(children) ? Object.keys(children) : [];
  }

  private findChild(child: string, ike?: string): string | null {
    for (const name of this.conns.keys()) if ((!ike || ike === name) && this.childNames(name).includes(child)) return name;
    return null;
  }

  private async initiate(c: Client, child: string, ikeFilter: string | undefined, timeout: number): Promise<ViciMessage> {
    if (!child) return fail('missing configuration name');
    const ike = this.findChild(child, ikeFilter);
    if (!ike) return fail(`CHILD_SA config '${child}' not found`);
    const outcome = this.outcome(ike, this.conns.get(ike)!);
    const failed = fail(`establishing CHILD_SA '${child}' failed`);
    const settle = (): ViciMessage => {
      if (!this.conns.has(ike)) return failed; // unloaded while negotiating in the background
      let sa = this.sas.get(ike);
      if (outcome === 'auth-failed') {
        this.sas.delete(ike);
        return failed;
      }
      if (!sa || sa.state !== 'ESTABLISHED') {
        sa = { ike, uniqueid: this.nextId++, state: 'ESTABLISHED', children: new Map() };
        this.sas.set(ike, sa);
        this.emit('ike-updown', { up: 'yes', [ike]: this.saView(sa, false) });
      }
      if (outcome === 'no-proposal') return failed;
      const cfg = (this.conns.get(ike)!.children as ViciMessage)[child] as ViciMessage;
      sa.children.set(child, { uniqueid: this.nextId++, mode: String(cfg.mode ?? 'tunnel').toUpperCase() });
      this.emit('child-updown', { up: 'yes', [ike]: this.saView(sa, true, child) });
      return ok;
    };
    if (outcome === 'unreachable') {
      if (!this.sas.has(ike)) this.sas.set(ike, { ike, uniqueid: this.nextId++, state: 'CONNECTING', children: new Map() });
      if (timeout < 0) return ok;
      // timeout 0 means "wait forever": hold the reply until the client goes away.
      await new Promise<void>((r) => (timeout > 0 ? setTimeout(r, timeout) : c.sock.once('close', () => r())));
      return fail(`CHILD_SA '${child}' not established after ${timeout}ms`);
    }
    if (timeout < 0) {
      setTimeout(settle, 5); // charon answers at once and negotiates in the background
      return ok;
    }
    return settle();
  }

  private terminate(ike: string | undefined, child: string | undefined): ViciMessage {
    let n = 0;
    for (const sa of [...this.sas.values()]) {
      if (ike && sa.ike !== ike) continue;
      if (child && !sa.children.has(child)) continue;
      for (const name of sa.children.keys()) this.emit('child-updown', { up: 'no', [sa.ike]: this.saView(sa, true, name) });
      if (sa.state === 'ESTABLISHED') this.emit('ike-updown', { up: 'no', [sa.ike]: this.saView(sa, false) });
      this.sas.delete(sa.ike);
      n++;
    }
    return n === 0 ? fail('no matching SAs to terminate found') : ok;
  }

  private saView(sa: FakeSa, withChildren = true, onlyChild?: string): ViciMessage {
    const conn = this.conns.get(sa.ike) ?? {};
    const remote = Array.isArray(conn.remote_addrs) ? String(conn.remote_addrs[0]) : '%any';
    const v: ViciMessage = { uniqueid: String(sa.uniqueid), version: '2', state: sa.state, 'remote-host': remote };
    if (withChildren) {
      const cs: ViciMessage = {};
      for (const [name, ch] of sa.children) {
        if (onlyChild && name !== onlyChild) continue;
        cs[`${name}-${ch.uniqueid}`] = { name, uniqueid: String(ch.uniqueid), state: 'INSTALLED', mode: ch.mode, protocol: 'ESP' };
      }
      v['child-sas'] = cs;
    }
    return v;
  }
}

/** The shape charon's list-conn event gives a connection (the parts dnsseal reads). */
function connView(conn: ViciMessage): ViciMessage {
  const list = (v: unknown, dflt: string[]) => (Array.isArray(v) ? v.map(String) : dflt);
  const children: ViciMessage = {};
  const cfg = (conn.children ?? {}) as ViciMessage;
  for (const [name, ch] of Object.entries(cfg)) {
    const c = ch as ViciMessage;
    children[name] = {
      mode: String(c.mode ?? 'tunnel').toUpperCase(),
      'local-ts': list(c.local_ts, ['dynamic']),
      'remote-ts': list(c.remote_ts, ['dynamic']),
    };
  }
  return {
    local_addrs: list(conn.local_addrs, ['%any']),
    remote_addrs: list(conn.remote_addrs, ['%any']),
    version: conn.version === '2' ? 'IKEv2' : conn.version === '1' ? 'IKEv1' : 'IKEv1/2',
    children,
  };
}
