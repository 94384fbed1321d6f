/**
 * VICI client over charon's unix socket.
 *
 * - Commands go through one FIFO queue on one shared connection: VICI has no sequence
 *   numbers, so exactly one command is in flight per connection. A streaming command
 *   (list-sas, list-conns) registers for its event, runs, and unregisters, all as one job.
 * - `initiate` gets a short-lived connection of its own: charon holds the reply until the
 *   CHILD_SA is up or failed, and that wait must not stall every other peer's load-conn.
 * - Events (`ike-updown`, `child-updown`) arrive on a separate, long-lived connection, opened
 *   by the first `subscribe`. While it cannot be opened (charon not started yet) and when it
 *   drops (charon restarted) it is re-opened with backoff and re-registered; `onLink` handlers
 *   hear every up and every failed attempt, so the owner can show the state and load its
 *   connections when charon is (back) up.
 * - A timeout, a protocol error or a close kills the connection it happened on; the next
 *   command opens a new one. So a restarted charon costs one failed command, no more.
 */
import { DnssealError } from '../util/errors.ts';
import { silentLogger, type Logger } from '../util/log.ts';
import { PacketType, type ViciMessage, type ViciPacket } from './vici-codec.ts';
import { ViciConnection } from './vici-connection.ts';
import {
  ViciCommandError,
  type InitiateArgs,
  type TerminateArgs,
  type ViciApi,
  type ViciEventName,
} from './vici-api.ts';

export const DEFAULT_VICI_SOCKET = '/var/run/charon.vici';

export interface ViciClientOptions {
  socketPath?: string;
  /** Per command (all its exchanges), default 10 s. */
  timeoutMs?: number;
  /** Connect timeout, default 2 s. */
  connectTimeoutMs?: number;
  /** Event-connection reconnect backoff, default 100 ms doubling to 5 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  log?: Logger;
}

type Handler = (msg: ViciMessage) => void;

export class ViciClient implements ViciApi {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly log: Logger;

  private cmdConn: ViciConnection | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly linkHandlers = new Set<(up: boolean, err?: string) => void>();
  private eventConn: ViciConnection | null = null;
  private eventConnecting = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private backoffMs: number;
  private readonly dedicated = new Set<ViciConnection>();

  constructor(opts: ViciClientOptions = {}) {
    this.socketPath = opts.socketPath ?? DEFAULT_VICI_SOCKET;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 2_000;
    this.reconnectMinMs = opts.reconnectMinMs ?? 100;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 5_000;
    this.backoffMs = this.reconnectMinMs;
    this.log = (opts.log ?? silentLogger).child({ component: 'vici' });
  }

  // ---- typed commands -------------------------------------------------------------------

  version(): Promise<ViciMessage> {
    return this.request('version', {}, { check: false });
  }

  async loadConn(name: string, conn: ViciMessage): Promise<void> {
    await this.request('load-conn', { [name]: conn });
  }

  async unloadConn(name: string): Promise<void> {
    await this.request('unload-conn', { name });
  }

  async initiate(a: InitiateArgs): Promise<void> {
    const msg = { child: a.child, ike: a.ike, timeout: a.timeoutMs, 'init-limits': 'no' };
    // charon's own timeout answers first; ours only catches a charon that never answers.
    const budget = a.timeoutMs !== undefined && a.timeoutMs > 0 ? a.timeoutMs + 1_000 : this.timeoutMs;
    await this.onDedicated('initiate', msg, budget);
  }

  async terminate(a: TerminateArgs): Promise<void> {
    const msg = { child: a.child, ike: a.ike, ike_id: a.ikeId, timeout: a.timeoutMs, force: a.force ? 'yes' : undefined };
    const budget = a.timeoutMs !== undefined && a.timeoutMs > 0 ? a.timeoutMs + 1_000 : this.timeoutMs;
    await this.onDedicated('terminate', msg, budget);
  }

  async install(a: { child: string; ike?: string }): Promise<void> {
    await this.request('install', { child: a.child, ike: a.ike });
  }

  async uninstall(a: { child: string; ike?: string }): Promise<void> {
    await this.request('uninstall', { child: a.child, ike: a.ike });
  }

  async listSas(f: { ike?: string; noblock?: boolean } = {}): Promise<ViciMessage[]> {
    return (await this.stream('list-sas', { ike: f.ike, noblock: f.noblock ? 'yes' : undefined }, 'list-sa')).events;
  }

  async listConns(f: { ike?: string } = {}): Promise<ViciMessage[]> {
    return (await this.stream('list-conns', { ike: f.ike }, 'list-conn')).events;
  }

  async getConns(): Promise<string[]> {
    const res = await this.request('get-conns', {}, { check: false });
    const conns = res.conns;
    return Array.isArray(conns) ? conns.map(String) : [];
  }

  async loadCert(a: { type?: 'X509'; flag?: 'NONE' | 'CA'; data: string | Uint8Array }): Promise<void> {
    await this.request('load-cert', { type: a.type ?? 'X509', flag: a.flag ?? 'NONE', data: a.data });
  }

  async loadKey(a: { type: 'ECDSA' | 'RSA' | 'ANY'; data: string | Uint8Array }): Promise<void> {
    await this.request('load-key', { type: a.type.toLowerCase(), data: a.data });
  }

  // ---- generic commands -----------------------------------------------------------------

  /** Sends one command on the shared connection (queued) and checks `success`. */
  request(cmd: string, msg: ViciMessage | Record<string, unknown>, o: { check?: boolean } = {}): Promise<ViciMessage> {
    return this.enqueue(async () => {
      const conn = await this.sharedConn();
      const res = await this.command(conn, cmd, msg, this.timeoutMs);
      return o.check === false ? res : checkSuccess(cmd, res);
    });
  }

  /** A streaming command: events named `event` raised before the response are collected. */
  stream(cmd: string, msg: Record<string, unknown>, event: string): Promise<{ response: ViciMessage; events: ViciMessage[] }> {
    return this.enqueue(async () => {
      const conn = await this.sharedConn();
      const events: ViciMessage[] = [];
      conn.onEvent = (name, m) => {
        if (name === event) events.push(m);
      };
      try {
        const deadline = Date.now() + this.timeoutMs;
        const left = () => Math.max(1, deadline - Date.now());
        await this.register(conn, 'EVENT_REGISTER', event, left());
        const response = await this.command(conn, cmd, msg, left());
        await this.register(conn, 'EVENT_UNREGISTER', event, left());
        return { response: checkSuccess(cmd, response), events };
      } finally {
        conn.onEvent = () => {};
      }
    });
  }

  // ---- events ---------------------------------------------------------------------------

  subscribe(event: ViciEventName, handler: Handler): () => void {
    let set = this.handlers.get(event);
    const fresh = !set;
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    if (this.eventConn && fresh) {
      const conn = this.eventConn;
      this.register(conn, 'EVENT_REGISTER', event, this.timeoutMs).catch((e) => {
        this.log.warn('event registration failed', { event, err: (e as Error).message });
        conn.close();
      });
    } else if (!this.eventConn) {
      void this.openEvents();
    }
    return () => set!.delete(handler);
  }

  onLink(handler: (up: boolean, err?: string) => void): () => void {
    this.linkHandlers.add(handler);
    return () => this.linkHandlers.delete(handler);
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.cmdConn?.close();
    this.eventConn?.close();
    for (const c of this.dedicated) c.close();
  }

  // ---- internals ------------------------------------------------------------------------

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DnssealError('vici', 'vici_closed', 'client closed'));
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => {});
    return run;
  }

  private async sharedConn(): Promise<ViciConnection> {
    if (this.closed) throw new DnssealError('vici', 'vici_closed', 'client closed');
    if (this.cmdConn && !this.cmdConn.closed) return this.cmdConn;
    this.cmdConn = await ViciConnection.open(this.socketPath, this.connectTimeoutMs);
    return this.cmdConn;
  }

  private async onDedicated(cmd: string, msg: Record<string, unknown>, budgetMs: number): Promise<ViciMessage> {
    if (this.closed) throw new DnssealError('vici', 'vici_closed', 'client closed');
    const conn = await ViciConnection.open(this.socketPath, this.connectTimeoutMs);
    this.dedicated.add(conn);
    try {
      return checkSuccess(cmd, await this.command(conn, cmd, msg, budgetMs));
    } finally {
      this.dedicated.delete(conn);
      conn.close();
    }
  }

  private async command(conn: ViciConnection, cmd: string, msg: Record<string, unknown>, timeoutMs: number): Promise<ViciMessage> {
    const reply = await conn.exchange({ type: PacketType.CMD_REQUEST, name: cmd, message: msg as ViciMessage }, timeoutMs);
    if (reply.type === PacketType.CMD_RESPONSE) return reply.message;
    if (reply.type === PacketType.CMD_UNKNOWN) throw new DnssealError('vici', 'vici_unknown_command', `${cmd} failed: charon does not know this command`);
    conn.close();
    throw new DnssealError('vici', 'vici_protocol', `${cmd} failed: unexpected reply packet type ${reply.type}`);
  }

  private async register(conn: ViciConnection, kind: 'EVENT_REGISTER' | 'EVENT_UNREGISTER', event: string, timeoutMs: number): Promise<void> {
    const p: ViciPacket = { type: PacketType[kind], name: event };
    const reply = await conn.exchange(p, timeoutMs);
    if (reply.type === PacketType.EVENT_CONFIRM) return;
    if (reply.type === PacketType.EVENT_UNKNOWN) throw new DnssealError('vici', 'vici_unknown_event', `${kind.toLowerCase()} ${event} failed: charon has no such event`);
    conn.close();
    throw new DnssealError('vici', 'vici_protocol', `${kind.toLowerCase()} ${event} failed: unexpected reply packet type ${reply.type}`);
  }

  private async openEvents(): Promise<void> {
    if (this.closed || this.eventConn || this.eventConnecting) return;
    this.eventConnecting = true;
    let conn: ViciConnection | null = null;
    try {
      conn = await ViciConnection.open(this.socketPath, this.connectTimeoutMs);
      conn.onEvent = (name, m) => this.dispatch(name, m);
      const c = conn;
      conn.onClose = (reason) => {
        if (this.eventConn === c) this.eventConn = null;
        if (!this.closed) {
          this.log.warn('event connection lost; reconnecting', { err: reason.message });
          this.link(false, reason.message);
          this.scheduleEvents();
        }
      };
      const done = new Set<string>();
      // Loop until stable: a subscribe() during these awaits adds a name we must register too.
      for (let more = true; more; ) {
        more = false;
        for (const name of [...this.handlers.keys()]) {
          if (done.has(name)) continue;
          await this.register(conn, 'EVENT_REGISTER', name, this.timeoutMs);
          done.add(name);
          more = true;
        }
      }
      if (this.closed) {
        conn.close();
        return;
      }
      this.eventConn = conn;
      this.backoffMs = this.reconnectMinMs;
      this.log.debug('event connection established');
      this.link(true);
    } catch (e) {
      conn?.close();
      if (!this.closed) {
        this.log.debug('event connection failed', { err: (e as Error).message });
        this.link(false, (e as Error).message);
        this.scheduleEvents();
      }
    } finally {
      this.eventConnecting = false;
    }
  }

  private scheduleEvents(): void {
    if (this.closed || this.reconnectTimer) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.openEvents();
    }, wait);
  }

  private link(up: boolean, err?: string): void {
    for (const h of [...this.linkHandlers]) {
      try {
        h(up, err);
      } catch (e) {
        this.log.error('link handler failed', { err: (e as Error).message });
      }
    }
  }

  private dispatch(name: string, msg: ViciMessage): void {
    for (const h of [...(this.handlers.get(name) ?? [])]) {
      try {
        h(msg);
      } catch (e) {
        this.log.error('event handler failed', { event: name, err: (e as Error).message });
      }
    }
  }
}

/** `success = no` → ViciCommandError carrying charon's errmsg; responses without `success` pass. */
export function checkSuccess(cmd: string, res: ViciMessage): ViciMessage {
  if (res.success === 'no') throw new ViciCommandError(cmd, typeof res.errmsg === 'string' ? res.errmsg : '');
  return res;
}
