/**
 * dnsseal entry point: builds the real dependencies, runs the CLI, exits with its code.
 * The only place in the project that calls process.exit, and only once everything the command
 * wrote has left (a pipe takes 64 KiB at a time: exiting earlier would cut the output).
 */
import { readFileSync } from 'node:fs';
import { runCli } from './cli/app.ts';
import { processIo } from './cli/io.ts';
import { EXIT } from './cli/exit-codes.ts';
import { fileDeps } from './config/load.ts';
import { controlRequest } from './control/client.ts';
import { kernelDown } from './daemon/down.ts';
import { offThreadConfig } from './daemon/off-thread-config.ts';
import { applyMemoryPlan } from './daemon/reexec.ts';
import { runDaemon } from './daemon/run.ts';
import { createLogger } from './util/log.ts';
import { realClock } from './util/clock.ts';
import pkg from '../package.json' with { type: 'json' };

const io = processIo();
const code = await runCli(process.argv.slice(2), {
  io,
  files: fileDeps,
  controlRequest: (path, req) => controlRequest(path, req),
  teardown: kernelDown,
  runDaemon,
  offThreadConfig,
  applyMemoryPlan: (planMb, log) => void applyMemoryPlan(planMb, log),
  makeLogger: (cfg) => createLogger({ level: cfg.logLevel, format: cfg.logFormat }),
  version: pkg.version,
  clock: realClock,
  signals: process,
  // this network namespace's interfaces (`check` warns about a lan/wan that does not exist):
  // /proc/net/dev follows the namespace the process runs in (/sys/class/net shows the one sysfs
  // was mounted in, which `nsenter --net` does not change)
  interfaces: () => {
    try {
      return readFileSync('/proc/net/dev', 'utf8')
        .split('\n')
        .slice(2)
        .map((l) => l.split(':')[0]!.trim())
        .filter(Boolean);
    } catch {
      return undefined;
    }
  },
});
const failed = await io.flush();
if (failed) {
  // the output is incomplete (a full disk, an I/O error): never exit 0 on a cut-off file
  if (failed.stream === 'stdout') process.stderr.write(`dnsseal: cannot write to stdout (${failed.error.message}): the output is incomplete\n`);
  process.exit(code === EXIT.ok ? EXIT.runtime : code);
}
process.exit(code);
