/**
 * dnsseal entry point: builds the real dependencies, runs the CLI, exits with its code.
 * The only place in the project that calls process.exit.
 */
import { runCli } from './cli/app.ts';
import { processIo } from './cli/io.ts';
import { fileDeps } from './config/load.ts';
import { controlRequest } from './control/client.ts';
import { kernelDown } from './daemon/down.ts';
import { runDaemon } from './daemon/run.ts';
import { createLogger } from './util/log.ts';
import { realClock } from './util/clock.ts';
import pkg from '../package.json' with { type: 'json' };

const code = await runCli(process.argv.slice(2), {
  io: processIo,
  files: fileDeps,
  controlRequest: (path, req) => controlRequest(path, req),
  teardown: kernelDown,
  runDaemon,
  makeLogger: (cfg) => createLogger({ level: cfg.logLevel, format: cfg.logFormat }),
  version: pkg.version,
  clock: realClock,
  signals: process,
});
process.exit(code);
