/** In-process CLI harness: captured output, in-memory files, a scripted control client. */
import { runCli } from '../../src/cli/app.ts';
import type { CliDeps } from '../../src/cli/context.ts';
import type { ControlRequest } from '../../src/control/protocol.ts';
import { createLogger } from '../../src/util/log.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { deps as fileDeps } from '../config/fixtures.ts';

export interface Harness {
  out: string;
  err: string;
  code: number;
  requests: Array<{ path: string; req: ControlRequest }>;
  daemonRuns: number;
  /** Kernel teardowns `down` asked for. */
  teardowns: number;
  /** Signal handlers a long-running command installed (it started serving). */
  signalHandlers: number;
  /** Lines the command logged at warn level and above (logfmt). */
  logs: string[];
}

export async function cli(
  argv: string[],
  opts: {
    files?: Record<string, string>;
    control?: (req: ControlRequest) => unknown;
    teardown?: string[];
    daemonCode?: number;
    /** Deliver SIGTERM as soon as a command listens for it (a serving command then stops). */
    stopAtOnce?: boolean;
    /** The machine's interfaces (`check`); absent: unknown. */
    interfaces?: string[];
  } = {},
): Promise<Harness> {
  const h: Harness = { out: '', err: '', code: -1, requests: [], daemonRuns: 0, teardowns: 0, signalHandlers: 0, logs: [] };
  const deps: CliDeps = {
    io: { out: (t) => void (h.out += t), err: (t) => void (h.err += t) },
    files: fileDeps(opts.files ?? {}),
    controlRequest: async (path, req) => {
      h.requests.push({ path, req });
      if (!opts.control) throw Object.assign(new (await import('../../src/util/errors.ts')).DnssealError('control', 'not_running', `dnsseal is not running (no daemon answers on ${path})`));
      return opts.control(req);
    },
    teardown: async () => {
      h.teardowns++;
      return opts.teardown ?? [];
    },
    runDaemon: async () => {
      h.daemonRuns++;
      return opts.daemonCode ?? 0;
    },
    makeLogger: () => createLogger({ level: 'warn', write: (line) => void h.logs.push(line), clock: () => 0 }),
    version: '9.9.9',
    clock: new FakeClock(),
    ...(opts.interfaces ? { interfaces: () => opts.interfaces } : {}),
    signals: {
      on: (signal, fn) => {
        h.signalHandlers++;
        if (opts.stopAtOnce && signal === 'SIGTERM') setTimeout(fn, 0);
      },
      off: () => {},
    },
  };
  h.code = await runCli(argv, deps);
  return h;
}
