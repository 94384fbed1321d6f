/**
 * Everything a CLI command needs from outside, passed in (no globals): output, config file
 * access, the control client, teardown and the daemon. main.ts builds the real ones; tests
 * build fakes.
 */
import type { Config } from '../config/types.ts';
import type { KernelDownOptions } from '../daemon/down.ts';
import type { LoadDeps } from '../config/load.ts';
import type { ControlRequest } from '../control/protocol.ts';
import type { DaemonDeps } from '../daemon/types.ts';
import type { OffThreadOptions } from '../daemon/off-thread-config.ts';
import type { Logger } from '../util/log.ts';
import type { CliIo } from './io.ts';
import type { ParsedArgs } from '../config/flags.ts';
import type { Clock } from '../util/clock.ts';

/** Where the long-running commands learn about SIGTERM/SIGINT/SIGHUP (the process, or a test emitter). */
export interface CliSignals {
  on(signal: 'SIGHUP' | 'SIGTERM' | 'SIGINT', fn: () => void): void;
  off(signal: 'SIGHUP' | 'SIGTERM' | 'SIGINT', fn: () => void): void;
}

export interface CliDeps {
  io: CliIo;
  files: LoadDeps;
  controlRequest(socketPath: string, req: ControlRequest): Promise<unknown>;
  /** Removes every kernel object dnsseal made (idempotent): src/daemon/down.ts. */
  teardown(log: Logger, opts?: KernelDownOptions): Promise<string[]>;
  runDaemon(cfg: Config, deps: DaemonDeps): Promise<number>;
  /**
   * The daemon's `reloadConfig` for these flags, reading the file off the event loop
   * (src/daemon/off-thread-config.ts). Absent (tests): `loadConfig` with `files`, in-thread.
   */
  offThreadConfig?(values: Map<string, string[]>, opts: OffThreadOptions): () => Promise<Config>;
  /**
   * `run`: applies `memory_plan` before the daemon opens anything (src/daemon/reexec.ts: starts
   * the process again with the JavaScript heap sized for it; returns when it did not). Absent
   * (tests that run the daemon in their own process): the heap stays as it is.
   */
  applyMemoryPlan?(planMb: number, log: Logger): void;
  /** Builds the logger for a command from the config's level and format. */
  makeLogger(cfg: Pick<Config, 'logLevel' | 'logFormat'>): Logger;
  version: string;
  clock: Clock;
  signals: CliSignals;
  /**
   * The network interfaces of this machine (`check` warns about a `lan`/`wan` that does not
   * exist); absent or undefined: not known, that warning is skipped.
   */
  interfaces?: () => readonly string[] | undefined;
}

export interface CliContext extends CliDeps {
  args: ParsedArgs;
  json: boolean;
}
