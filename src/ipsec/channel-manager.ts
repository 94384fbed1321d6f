/**
 * IPsec channels in strongSwan, driven over VICI. Implements the registry's ChannelHooks.
 *
 * - `tunnel` channels are loaded once at `start()` (load-conn + install the trap, then a
 *   background initiate so the first packet does not wait for IKE). A tunnel channel first
 *   seen at runtime (a policy server named it, #5) is loaded the same way by `ensureChannel`,
 *   which the daemon awaits before the first answer under it is released; it stays loaded
 *   while the daemon runs (its `dnsseal-` name lets `dnsseal down` remove it).
 * - `peer` channels get one connection per (channel, address), loaded on `peerAdded`. With
 *   `negotiate: before-answer` (the default) the SA is initiated and `peerAdded` resolves only
 *   when the CHILD_SA is up; anything else within the bounded wait (the channel's
 *   `negotiate_timeout`, default 2 s) rejects, so the proxy answers SERVFAIL and no client is
 *   handed an address it would talk to in clear (the registry keeps the address blocked: the
 *   guard drops traffic to it). A failed connection is removed again. Several groups may hold one address: the
 *   connection is reference-counted and unloaded when the last lets go (`peerRemoved`).
 * - When charon restarts it forgets everything; the VICI client reports the event connection
 *   back up and every tunnel and live peer connection is loaded and trapped again (`resync`).
 * - charon not there at `start()` (boot ordering, a restart) does not stop the daemon: start
 *   resolves, the link state says `waiting` (with the error), and the same `resync` loads every
 *   channel once the VICI client reaches charon (it retries with backoff). Until then nothing
 *   is loaded: peer set-ups fail (SERVFAIL, the address stays blocked) and tunnel marks have no
 *   XFRM policy, so the leak guard drops their packets — fail closed, DNS keeps working.
 * - A reload changes the configured channels (`prepareChannels` … `settleChannels`): a new
 *   tunnel is loaded and trapped before the new config runs (nothing is marked for it yet), a
 *   changed one is replaced once it runs (trap, config and SAs of the old settings go, the new
 *   ones are loaded; meanwhile the guard drops its traffic), a removed one is unloaded; a changed
 *   peer channel's live connections are replaced the same way, a removed one's go with its
 *   entries (the registry retires them: peerRemoved). Unchanged channels are not touched.
 */
import type { Mode } from '../config/types.ts';
import type { Counter, Gauge, Histogram, Metrics } from '../ops/metrics.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { ChannelHooks } from '../registry/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { CONN_PREFIX, peerConn, peerConnName, tunnelConn, tunnelConnName, type ConnContext } from './conn-config.ts';
import { ViciCommandError, type ViciApi } from './vici-api.ts';
import { diffChannels, type ChannelChange, type ChannelSettle } from './channel-changes.ts';
import { isSection, type ViciMessage } from './vici-codec.ts';

/** Errors that mean "charon is not there (yet)", not "charon refused": start waits for it. */
const UNREACHABLE = new Set(['vici_unreachable', 'vici_disconnected', 'vici_io', 'vici_timeout']);

/** The bounded wait of `negotiate: before-answer` when the channel sets no `negotiate_timeout`. */
export const DEFAULT_NEGOTIATE_TIMEOUT_MS = 2_000;

export interface ChannelState {
  channel: string;
  id: number;
  kind: ChannelSpec['kind'];
  /** tunnel: its CHILD_SA is up; peer: number of peer CHILD_SAs up. */
  up: boolean;
  peers: number;
}

/**
 * Whether charon is reachable over VICI (`status` shows it): `connected` since a time, or
 * `waiting` since a time with the last error; `none` for the no-op backend.
 */
export type IpsecLink =
  | { state: 'connected'; sinceMs: number }
  | { state: 'waiting'; sinceMs: number; lastError: string }
  | { state: 'none' };

/** What the daemon holds: the hooks plus start/close/status. NoIpsec implements it too. */
export interface IpsecChannels extends ChannelHooks {
  /** `strongswan` or `none` (logged by the factory). */
  readonly kind: string;
  /**
   * Loads every tunnel channel; rejects (with charon's errmsg) when charon refuses one. When
   * charon cannot be reached it resolves anyway and loads them once charon appears (`link()`).
   */
  start(): Promise<void>;
  /**
   * Makes a channel that was not in the start-up list usable (policy-server channels): a
   * `tunnel` gets its connection loaded and trapped like the start-up ones; resolves once that
   * is done, at once when it already was (idempotent), rejects when charon refuses (the caller
   * answers SERVFAIL; a later call tries again). `peer` channels need nothing up front.
   */
  ensureChannel(channel: ChannelSpec): Promise<void>;
  /** Stops using VICI. Leaves charon's SAs in place: a restarting daemon keeps protecting. */
  close(): void;
  /**
   * A reload's new channel list (ids stable by name): loads the new tunnels (a refusal throws,
   * having unloaded them again); the running channels are not touched yet.
   */
  prepareChannels(next: readonly ChannelSpec[]): Promise<ChannelChange>;
  /** The configured channels become the change's (synchronous; `rollbackChannels` undoes it). */
  commitChannels(change: ChannelChange): void;
  rollbackChannels(change: ChannelChange): void;
  /** The reload did not go through: unloads what prepare loaded. */
  abortChannels(change: ChannelChange): Promise<void>;
  /** Once the new config runs: replaces changed channels' connections, unloads removed tunnels. */
  settleChannels(change: ChannelChange): Promise<ChannelSettle>;
  status(): ChannelState[];
  /** Whether charon is reachable (wall-clock times). */
  link(): IpsecLink;
}

export interface ChannelManagerOptions {
  vici: ViciApi;
  mode: Mode;
  /** LAN prefixes (CIDRs) for tunnel-mode local traffic selectors; see local-ts.ts. */
  lan: string[];
  /** Explicit local traffic selectors (config `local_ts`), replacing `lan` / `dynamic`. */
  localTs?: string[];
  channels: ChannelSpec[];
  log: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Our IKE identity (a name in our certificate); unset: charon's default (our address). */
  localId?: string;
  localAddrs?: string[];
  ikeProposals?: string[];
  /** Bounded wait for `negotiate: before-answer`, default 2000 ms; a channel's own `negotiateTimeoutMs` wins. */
  negotiateTimeoutMs?: number;
  /** Called when a tunnel channel's SA goes up or down (e.g. Datapath.setChannels). */
  onChannelState?: (channel: ChannelSpec, up: boolean) => void;
  /** charon became reachable over VICI (at start and after each reconnect): a new charon may have new sockets. */
  onCharonUp?: () => void;
  /** Close `vici` in close() (set when the manager's creator made the client for it). */
  ownsVici?: boolean;
}

/** A tunnel channel loaded at runtime by ensureChannel. */
interface RuntimeTunnel {
  channel: ChannelSpec;
  ready: Promise<void>;
  ok: boolean;
}

interface PeerConn {
  channel: ChannelSpec;
  addr: string;
  name: string;
  conn: string;
  refs: number;
  ready: Promise<void>;
  /** Settles when every VICI call of the set-up is done (later than `ready` on a timeout). */
  settled: Promise<void>;
  ok: boolean;
}

export class ChannelManager implements IpsecChannels {
  readonly kind = 'strongswan';
  private readonly vici: ViciApi;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly ctx: ConnContext;
  private readonly waitMs: number;
  private readonly peers = new Map<string, PeerConn>();
  /** Connection names with at least one CHILD_SA up, and how many. */
  private readonly childUp = new Map<string, number>();
  private readonly unsubscribe: Array<() => void> = [];
  /** Removals in flight by connection name: a re-add of the same peer waits for them. */
  private readonly removing = new Map<string, Promise<void>>();
  /** Tunnel channels loaded by ensureChannel, by connection name. */
  private readonly runtime = new Map<string, RuntimeTunnel>();
  /** Peer channels first seen by ensureChannel (listed by status), by name. */
  private readonly runtimePeers = new Map<string, ChannelSpec>();
  /** The configured channels (the start-up list, then what each reload made it). */
  private configured: readonly ChannelSpec[];
  private readonly setupTotal: Counter;
  private readonly setupSeconds: Histogram;
  private readonly channelUp: Gauge;
  private readonly resyncTotal: Counter;
  private readonly viciUp: Gauge;
  private linkState: Exclude<IpsecLink, { state: 'none' }>;
  /** The link state last logged (null: none yet), so the log has one line per change. */
  private reported: 'up' | 'down' | null = null;
  /** charon may lack our connections (never loaded, or it restarted): load all when the link is up. */
  private needLoad = false;
  private closed = false;

  constructor(private readonly opts: ChannelManagerOptions) {
    this.vici = opts.vici;
    this.configured = opts.channels;
    this.log = opts.log.child({ component: 'ipsec' });
    this.clock = opts.clock;
    this.waitMs = opts.negotiateTimeoutMs ?? DEFAULT_NEGOTIATE_TIMEOUT_MS;
    this.ctx = { mode: opts.mode, lan: opts.lan, localTs: opts.localTs, localId: opts.localId, localAddrs: opts.localAddrs, ikeProposals: opts.ikeProposals };
    const m = opts.metrics;
    this.setupTotal = m.counter('dnsseal_ipsec_peer_setup_total', 'Per-peer connection set-ups by channel and outcome');
    this.setupSeconds = m.histogram('dnsseal_ipsec_peer_setup_seconds', 'Time from peerAdded to SA up (or failure)');
    this.channelUp = m.gauge('dnsseal_ipsec_channel_up', '1 when a tunnel channel has a CHILD_SA up');
    this.resyncTotal = m.counter('dnsseal_ipsec_resync_total', 'Reloads of all connections after charon came back, by outcome');
    this.viciUp = m.gauge('dnsseal_ipsec_vici_up', '1 while charon is reachable over VICI, 0 while dnsseal waits for it');
    this.linkState = { state: 'waiting', sinceMs: this.clock.nowMs(), lastError: 'not connected yet' };
    this.viciUp.set(0);
  }

  async start(): Promise<void> {
    for (const ch of this.configured) if (ch.kind === 'tunnel') this.channelUp.set(0, { channel: ch.name });
    // The event connection is the link: it retries with backoff while charon is away.
    this.unsubscribe.push(
      this.vici.onLink((up, err) => this.onLink(up, err)),
      this.vici.subscribe('child-updown', (msg) => this.onChildUpdown(msg)),
      this.vici.subscribe('ike-updown', (msg) => this.onIkeUpdown(msg)),
    );
    let v;
    try {
      v = await this.vici.version();
    } catch (err) {
      if (!(err instanceof DnssealError && UNREACHABLE.has(err.code))) throw err;
      // Not there yet (boot order, a restart): serve DNS anyway, load everything when it appears.
      if (this.reported === 'up') {
        // The event connection got through meanwhile: it will not report up again, load now.
        void this.resync();
        return;
      }
      this.needLoad = true;
      this.onLink(false, errorMessage(err));
      return;
    }
    this.setLink(true);
    this.charonUp();
    this.log.info('strongSwan reachable', { daemon: String(v.daemon), version: String(v.version), socket: this.vici.socketPath });
    // A refusal (charon is there but rejects our config) stops the start: that is a config error.
    for (const ch of this.configured) {
      if (ch.kind !== 'tunnel') continue;
      await this.loadTunnel(ch);
      this.log.info('tunnel channel loaded', { channel: ch.name, gateway: ch.gateway, identity: ch.identity });
    }
  }

  close(): void {
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.opts.ownsVici) this.vici.close();
  }

  link(): IpsecLink {
    return { ...this.linkState };
  }

  status(): ChannelState[] {
    return this.channels().map((ch) => {
      const peers = [...this.peers.values()].filter((p) => p.channel.name === ch.name && this.childUp.has(p.conn)).length;
      const up = ch.kind === 'tunnel' ? this.childUp.has(tunnelConnName(ch)) : peers > 0;
      return { channel: ch.name, id: ch.id, kind: ch.kind, up, peers };
    });
  }

  ensureChannel(ch: ChannelSpec): Promise<void> {
    if (ch.kind !== 'tunnel') {
      if (!this.configured.some((c) => c.name === ch.name)) this.runtimePeers.set(ch.name, ch);
      return Promise.resolve(); // per-address connections come with peerAdded
    }
    const conn = tunnelConnName(ch);
    const atStart = this.configured.find((c) => c.kind === 'tunnel' && tunnelConnName(c) === conn);
    const loaded = atStart ? { channel: atStart, ready: Promise.resolve() } : this.runtime.get(conn);
    if (loaded) {
      if (Bun.deepEquals(loaded.channel, ch)) return loaded.ready;
      // One name, other settings (the server changed the channel): loading it would replace the
      // connection the entries under the old mark rely on. Fail closed instead.
      return Promise.reject(
        new DnssealError(
          'ipsec',
          'channel_conflict',
          `channel ${ch.name} (id ${ch.id}): connection ${conn} is already loaded for other settings (id ${loaded.channel.id}); restart dnsseal to switch`,
        ),
      );
    }
    const t: RuntimeTunnel = { channel: ch, ready: Promise.resolve(), ok: false };
    this.runtime.set(conn, t);
    this.channelUp.set(0, { channel: ch.name });
    t.ready = (async () => {
      await this.removing.get(conn); // a failed earlier attempt is still being cleaned up
      await this.loadTunnel(ch);
    })().then(
      () => {
        t.ok = true;
        this.log.info('tunnel channel loaded at runtime', { channel: ch.name, id: ch.id, gateway: ch.gateway, identity: ch.identity });
      },
      (err: unknown) => {
        // Leave nothing half-loaded (a config without its trap); the next query tries again.
        if (this.runtime.get(conn) === t) this.runtime.delete(conn);
        void this.removeConn(conn);
        this.log.warn('tunnel channel could not be loaded', { channel: ch.name, err: errorMessage(err) });
        throw new DnssealError('ipsec', 'tunnel_not_loaded', `channel ${ch.name}: tunnel connection not loaded: ${errorMessage(err)}`, { cause: err });
      },
    );
    return t.ready;
  }

  async prepareChannels(next: readonly ChannelSpec[]): Promise<ChannelChange> {
    const diff = diffChannels(this.configured, next);
    const loaded: ChannelSpec[] = [];
    // A new name: loading it touches nothing running (no entry carries its mark yet). With
    // charon away, resync loads it with the others once charon is back.
    if (this.linkState.state === 'connected') {
      for (const ch of diff.added) {
        if (ch.kind !== 'tunnel') continue;
        try {
          await this.removing.get(tunnelConnName(ch));
          await this.loadTunnel(ch);
          loaded.push(ch);
        } catch (err) {
          await Promise.all([...loaded, ch].map((c) => this.removeConn(tunnelConnName(c))));
          throw new DnssealError('ipsec', 'channel_refused', `channel ${ch.name}: strongSwan refused the tunnel: ${errorMessage(err)}`, { cause: err });
        }
      }
    }
    return { before: this.configured, after: [...next], diff, loaded };
  }

  commitChannels(change: ChannelChange): void {
    this.configured = change.after;
    for (const ch of change.diff.added) if (ch.kind === 'tunnel') this.channelUp.set(0, { channel: ch.name });
  }

  rollbackChannels(change: ChannelChange): void {
    this.configured = change.before;
  }

  async abortChannels(change: ChannelChange): Promise<void> {
    await Promise.all(change.loaded.map((ch) => this.removeConn(tunnelConnName(ch))));
  }

  async settleChannels(change: ChannelChange): Promise<ChannelSettle> {
    const out: ChannelSettle = { loaded: 0, replaced: 0, unloaded: 0 };
    const connected = this.linkState.state === 'connected';
    for (const ch of change.diff.removed) {
      if (ch.kind !== 'tunnel') continue; // a peer channel's connections go with its (retired) entries
      this.setTunnelUp(ch, false);
      await this.removeConn(tunnelConnName(ch));
      out.unloaded++;
      this.log.info('tunnel channel unloaded (removed by a reload)', { channel: ch.name });
    }
    for (const { before, after } of change.diff.changed) {
      if (before.kind === 'tunnel') {
        this.setTunnelUp(before, false);
        await this.removeConn(tunnelConnName(before));
      }
      if (after.kind === 'tunnel' && connected) await this.loadTunnel(after);
      // live peer connections of the channel: the old settings go, the new ones trap again
      for (const p of this.peers.values()) {
        if (p.channel.name !== after.name) continue;
        p.channel = after;
        if (!p.ok) continue;
        await this.removeConn(p.conn);
        if (after.kind !== 'peer' || !connected) continue;
        await this.vici.loadConn(p.conn, peerConn(after, p.addr, p.name, this.ctx));
        await this.vici.install({ child: p.conn, ike: p.conn });
      }
      out.replaced++;
      this.log.info('channel replaced (changed by a reload)', { channel: after.name, kind: after.kind });
    }
    for (const ch of change.diff.added) {
      if (ch.kind !== 'tunnel' || change.loaded.includes(ch) || this.linkState.state !== 'connected') continue;
      await this.loadTunnel(ch); // charon came back between prepare and now: resync used the old list
      out.loaded++;
    }
    for (const ch of change.loaded) this.log.info('tunnel channel loaded (added by a reload)', { channel: ch.name, gateway: ch.gateway, identity: ch.identity });
    return out;
  }

  /** Start-up channels, then those first seen at runtime. */
  private channels(): ChannelSpec[] {
    return [...this.configured, ...[...this.runtime.values()].map((t) => t.channel), ...this.runtimePeers.values()];
  }

  /** Tunnel channels whose connection should be in charon: start-up ones and loaded runtime ones. */
  private tunnels(): ChannelSpec[] {
    return [...this.configured.filter((c) => c.kind === 'tunnel'), ...[...this.runtime.values()].filter((t) => t.ok).map((t) => t.channel)];
  }

  async peerAdded(channel: ChannelSpec, addr: string, name: string): Promise<void> {
    if (channel.kind !== 'peer') return; // a tunnel channel is already loaded
    const key = `${channel.name}|${addr}`;
    const existing = this.peers.get(key);
    if (existing) {
      existing.refs++;
      return existing.ready;
    }
    const p: PeerConn = { channel, addr, name, conn: peerConnName(channel, addr), refs: 1, ready: Promise.resolve(), settled: Promise.resolve(), ok: false };
    this.peers.set(key, p);
    p.ready = this.setupPeer(p).then(
      () => void (p.ok = true),
      (err: unknown) => {
        // Fail closed and leave nothing behind: the caller answers SERVFAIL.
        // If peerRemoved already took the entry, it removes the connection itself.
        if (this.peers.get(key) === p) {
          this.peers.delete(key);
          void this.removeConn(p.conn, p.settled);
        }
        throw err;
      },
    );
    return p.ready;
  }

  peerRemoved(channel: ChannelSpec, addr: string): void {
    const key = `${channel.name}|${addr}`;
    const p = this.peers.get(key);
    if (!p) {
      // An entry adopted from a previous daemon run: that run's connection may still be loaded.
      void this.removeConn(peerConnName(channel, addr));
      return;
    }
    if (--p.refs > 0) return;
    this.peers.delete(key);
    // Wait for a set-up still in flight, then take the connection down either way.
    void this.removeConn(p.conn, p.ready.catch(() => {}).then(() => p.settled));
  }

  private async setupPeer(p: PeerConn): Promise<void> {
    const t0 = this.clock.monoMs();
    const negotiate = p.channel.negotiate ?? 'before-answer';
    // The channel's own `negotiate_timeout`, else the daemon-wide wait (server channels carry none).
    const waitMs = p.channel.negotiateTimeoutMs ?? this.waitMs;
    const labels = { channel: p.channel.name };
    const fail = (what: string, err: unknown) => {
      this.setupTotal.inc({ ...labels, outcome: what });
      this.setupSeconds.observe((this.clock.monoMs() - t0) / 1000, labels);
      this.log.warn('peer channel not ready', { channel: p.channel.name, name: p.name, outcome: what, err: errorMessage(err) });
      return new DnssealError('ipsec', 'peer_not_ready', `channel ${p.channel.name}: no SA with ${p.name} (${p.addr}): ${errorMessage(err)}`, { cause: err });
    };
    const work = (async () => {
      await this.removing.get(p.conn);
      await this.vici.loadConn(p.conn, peerConn(p.channel, p.addr, p.name, this.ctx));
      await this.vici.install({ child: p.conn, ike: p.conn });
      if (negotiate !== 'before-answer') return;
      // A daemon restart re-adds live entries: an SA that is already up is not initiated twice.
      if (await this.childInstalled(p.conn)) return;
      const left = Math.max(1, waitMs - (this.clock.monoMs() - t0));
      await this.vici.initiate({ child: p.conn, ike: p.conn, timeoutMs: left });
    })();
    p.settled = work.then(
      () => {},
      () => {},
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      // charon's own timeout normally answers first; this catches a charon that does not.
      timer = setTimeout(() => reject(new DnssealError('ipsec', 'peer_timeout', `SA not up within ${waitMs} ms`)), waitMs + 500);
    });
    try {
      await Promise.race([work, deadline]);
    } catch (err) {
      throw fail(err instanceof DnssealError && err.code === 'peer_timeout' ? 'timeout' : 'error', err);
    } finally {
      clearTimeout(timer);
    }
    this.setupTotal.inc({ ...labels, outcome: negotiate === 'before-answer' ? 'up' : 'trapped' });
    this.setupSeconds.observe((this.clock.monoMs() - t0) / 1000, labels);
    this.log.debug('peer channel ready', { channel: p.channel.name, name: p.name, negotiate });
  }

  private async childInstalled(conn: string): Promise<boolean> {
    for (const entry of await this.vici.listSas({ ike: conn, noblock: true })) {
      const sa = entry[conn];
      const children = isSection(sa) ? sa['child-sas'] : undefined;
      if (isSection(children) && Object.values(children).some((c) => isSection(c) && c.state === 'INSTALLED')) return true;
    }
    return false;
  }

  private async loadTunnel(ch: ChannelSpec): Promise<void> {
    const conn = tunnelConnName(ch);
    await this.vici.loadConn(conn, tunnelConn(ch, this.ctx));
    await this.vici.install({ child: conn, ike: conn });
    // Bring the tunnel up now rather than on the first packet; a failure is only logged,
    // the trap still triggers IKE when traffic comes.
    this.vici.initiate({ child: conn, ike: conn, timeoutMs: -1 }).catch((e) =>
      this.log.warn('tunnel initiate failed; trap stays installed', { channel: ch.name, err: errorMessage(e) }),
    );
  }

  /** Uninstall, unload, terminate; each step's "not found" is fine. */
  private removeConn(conn: string, after: Promise<void> = Promise.resolve()): Promise<void> {
    const prev = this.removing.get(conn) ?? Promise.resolve();
    // Registered synchronously, so a peerAdded right after this call already waits for it.
    const run = Promise.all([prev, after]).then(() => this.removeConnNow(conn));
    this.removing.set(conn, run);
    void run.finally(() => {
      if (this.removing.get(conn) === run) this.removing.delete(conn);
    });
    return run;
  }

  /**
   * Trap first (nothing new starts), then the config, then the SAs: charon keeps SAs of an
   * unloaded config, and one still negotiating would otherwise come up after we looked.
   */
  private async removeConnNow(conn: string): Promise<void> {
    await this.vici.uninstall({ child: conn }).catch(() => {});
    await this.vici.unloadConn(conn).catch((e) => {
      // "not found" is the normal case for an adopted entry whose connection is already gone.
      if (!(e instanceof ViciCommandError && /not found/.test(e.errmsg))) this.log.warn('unload-conn failed', { conn, err: errorMessage(e) });
    });
    await this.vici.terminate({ ike: conn, timeoutMs: -1, force: true }).catch(() => {});
    this.childUp.delete(conn);
  }

  /** The VICI client reached charon, lost it, or failed another attempt (log changes only). */
  private onLink(up: boolean, err?: string): void {
    if (this.closed) return;
    if (!up) {
      // Back up after this may be a restarted charon that forgot our connections.
      this.needLoad = true;
      this.setLink(false, err);
      return;
    }
    this.setLink(true);
    this.charonUp();
    if (!this.needLoad) return;
    this.needLoad = false;
    void this.resync();
  }

  private charonUp(): void {
    try {
      this.opts.onCharonUp?.();
    } catch (e) {
      this.log.error('onCharonUp failed', { err: errorMessage(e) });
    }
  }

  private setLink(up: boolean, err = 'unknown error'): void {
    if (up) {
      if (this.reported === 'up') return;
      const waitedS = Math.round((this.clock.nowMs() - this.linkState.sinceMs) / 1000);
      this.linkState = { state: 'connected', sinceMs: this.clock.nowMs() };
      this.viciUp.set(1);
      // The first contact at start is logged by start() (with charon's version).
      if (this.reported === 'down') this.log.info('strongSwan reachable again: loading channels', { socket: this.vici.socketPath, waitedS });
      this.reported = 'up';
      return;
    }
    if (this.reported === 'down') {
      this.linkState = { state: 'waiting', sinceMs: this.linkState.sinceMs, lastError: err }; // still waiting: no log line per retry
      return;
    }
    this.linkState = { state: 'waiting', sinceMs: this.clock.nowMs(), lastError: err };
    this.viciUp.set(0);
    this.reported = 'down';
    this.log.warn('strongSwan not reachable: DNS keeps being served, protected traffic is dropped until it is back; retrying in the background', {
      socket: this.vici.socketPath,
      err,
    });
  }

  /** charon (re)appeared without our connections: load and trap them all again. */
  private async resync(): Promise<void> {
    this.childUp.clear();
    let failed = 0;
    for (const ch of this.tunnels()) {
      this.setTunnelUp(ch, false);
      await this.loadTunnel(ch).catch((e) => {
        failed++;
        this.log.error('tunnel reload after charon restart failed', { channel: ch.name, err: errorMessage(e) });
      });
    }
    for (const p of this.peers.values()) {
      if (!p.ok) continue;
      try {
        await this.vici.loadConn(p.conn, peerConn(p.channel, p.addr, p.name, this.ctx));
        await this.vici.install({ child: p.conn, ike: p.conn });
      } catch (e) {
        failed++;
        this.log.error('peer reload after charon restart failed', { channel: p.channel.name, err: errorMessage(e) });
      }
    }
    this.resyncTotal.inc({ outcome: failed ? 'error' : 'ok' });
    this.log.info('connections loaded into strongSwan', { failed });
  }

  private onChildUpdown(msg: ViciMessage): void {
    const up = msg.up === 'yes';
    for (const [ike, body] of Object.entries(msg)) {
      if (ike === 'up' || !ike.startsWith(CONN_PREFIX) || !isSection(body)) continue;
      const n = (this.childUp.get(ike) ?? 0) + (up ? 1 : -1);
      if (n > 0) this.childUp.set(ike, n);
      else this.childUp.delete(ike);
      const ch = this.channels().find((c) => c.kind === 'tunnel' && tunnelConnName(c) === ike);
      if (ch) this.setTunnelUp(ch, this.childUp.has(ike));
    }
  }

  private onIkeUpdown(msg: ViciMessage): void {
    if (msg.up === 'yes') return;
    for (const ike of Object.keys(msg)) {
      if (!this.childUp.delete(ike)) continue;
      const ch = this.channels().find((c) => c.kind === 'tunnel' && tunnelConnName(c) === ike);
      if (ch) this.setTunnelUp(ch, false);
    }
  }

  private setTunnelUp(ch: ChannelSpec, up: boolean): void {
    this.channelUp.set(up ? 1 : 0, { channel: ch.name });
    try {
      this.opts.onChannelState?.(ch, up);
    } catch (e) {
      this.log.error('onChannelState failed', { channel: ch.name, err: errorMessage(e) });
    }
  }
}

/** The first-class no-op backend (`--datapath none`): nothing to protect, nothing to load. */
export class NoIpsec implements IpsecChannels {
  readonly kind = 'none';
  constructor(private channels: readonly ChannelSpec[] = []) {}
  async start(): Promise<void> {}
  async ensureChannel(_channel: ChannelSpec): Promise<void> {}
  close(): void {}
  async prepareChannels(next: readonly ChannelSpec[]): Promise<ChannelChange> {
    return { before: this.channels, after: [...next], diff: diffChannels(this.channels, next), loaded: [] };
  }
  commitChannels(change: ChannelChange): void {
    this.channels = [...change.after];
  }
  rollbackChannels(change: ChannelChange): void {
    this.channels = [...change.before];
  }
  async abortChannels(): Promise<void> {}
  async settleChannels(): Promise<ChannelSettle> {
    return { loaded: 0, replaced: 0, unloaded: 0 };
  }
  status(): ChannelState[] {
    return this.channels.map((ch) => ({ channel: ch.name, id: ch.id, kind: ch.kind, up: false, peers: 0 }));
  }
  link(): IpsecLink {
    return { state: 'none' };
  }
  async peerAdded(): Promise<void> {}
  peerRemoved(): void {}
}
