/**
 * What dnsseal asks of charon, as typed calls. `ViciClient` implements it over the VICI
 * socket; the tests run it against charon and against `FakeCharon` (the same server side,
 * in memory) with one shared suite.
 *
 * Every failing command rejects with a DnssealError whose message carries charon's
 * `errmsg` (`vici: load-conn failed: …`), so the operator sees charon's own words.
 */
import { DnssealError } from '../util/errors.ts';
import type { ViciMessage } from './vici-codec.ts';

export type ViciEventName = 'ike-updown' | 'child-updown' | 'ike-rekey' | 'child-rekey' | 'log';

export interface InitiateArgs {
  child?: string;
  ike?: string;
  /** charon waits this long for the result; -1 returns at once (README: 0 = forever). */
  timeoutMs?: number;
}

export interface TerminateArgs {
  child?: string;
  ike?: string;
  ikeId?: string;
  timeoutMs?: number;
  force?: boolean;
}

export interface ViciApi {
  readonly socketPath: string;
  version(): Promise<ViciMessage>;
  /** Loads or replaces one connection: `conn` is the body of swanctl.conf's `connections.<name>`. */
  loadConn(name: string, conn: ViciMessage): Promise<void>;
  unloadConn(name: string): Promise<void>;
  /** Runs on a connection of its own: a long initiate must not hold up other commands. */
  initiate(args: InitiateArgs): Promise<void>;
  terminate(args: TerminateArgs): Promise<void>;
  install(args: { child: string; ike?: string }): Promise<void>;
  uninstall(args: { child: string; ike?: string }): Promise<void>;
  /** One `list-sa` event body per IKE_SA (`{ <conn name>: {...} }`). */
  listSas(filter?: { ike?: string; noblock?: boolean }): Promise<ViciMessage[]>;
  /** One `list-conn` event body per connection (`{ <conn name>: {...} }`). */
  listConns(filter?: { ike?: string }): Promise<ViciMessage[]>;
  /** Names of the connections loaded over VICI. */
  getConns(): Promise<string[]>;
  loadCert(args: { type?: 'X509'; flag?: 'NONE' | 'CA'; data: string | Uint8Array }): Promise<void>;
  loadKey(args: { type: 'ECDSA' | 'RSA' | 'ANY'; data: string | Uint8Array }): Promise<void>;
  /** Delivers an event to `handler` until the returned function is called. */
  subscribe(event: ViciEventName, handler: (msg: ViciMessage) => void): () => void;
  /**
   * Follows the event connection, which is how dnsseal sees whether charon is there:
   * `handler(true)` each time it is established (events registered), `handler(false, err)` when
   * it is lost and after each failed attempt to reach charon (attempts repeat with backoff
   * while anyone is subscribed). Coming back after a loss means charon may have restarted and
   * forgotten every connection loaded before. Owners log changes, not every call.
   */
  onLink(handler: (up: boolean, err?: string) => void): () => void;
  close(): void;
}

/** A command charon answered with `success = no`. */
export class ViciCommandError extends DnssealError {
  readonly command: string;
  readonly errmsg: string;
  constructor(command: string, errmsg: string) {
    super('vici', 'vici_command_failed', `${command} failed: ${errmsg || '(charon gave no errmsg)'}`);
    this.name = 'ViciCommandError';
    this.command = command;
    this.errmsg = errmsg;
  }
}
