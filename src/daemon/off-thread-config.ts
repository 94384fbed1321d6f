/**
 * A reload's config, read off the event loop (issue 12: "a reload builds the new policy off
 * the hot path"): config-worker.ts loads the file and builds the matchers in a worker; here the
 * config is put back together in slices that yield to the event loop (each rules file's rules
 * become views over its packed text, a few thousand per turn), and the matchers wait for the
 * policy part (`builtMatchers`), which then only wraps them. With 200k rules no answer waits
 * more than a slice (bench/reload.ts).
 *
 * When no worker can be started (an executable built without the worker entry point), the
 * config is loaded here, blocking, as before — said once in the log.
 */
import { checkConfig, problemText, type Problem } from '../config/check.ts';
import { fileDeps, type LoadDeps } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import type { MatcherData } from '../policy/matcher.ts';
import { PackedRules } from '../policy/packed-rules.ts';
import { ruleList } from '../policy/rule-list.ts';
import type { Table } from '../policy/types.ts';
import { ConfigError, DnssealError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { WorkerReply, WorkerRequest } from './config-worker.ts';

/** How long a reload waits for the worker (then it is refused, nothing changed). */
const WORKER_TIMEOUT_MS = 120_000;

/** Matchers a worker built for a config's tables (keyed by the tables array, which the merged config keeps). */
const built = new WeakMap<readonly Table[], ReadonlyMap<string, MatcherData>>();

/** The matchers built off-thread for these tables, if any (taken once: they are handed to one Policy). */
export function builtMatchers(tables: readonly Table[]): ReadonlyMap<string, MatcherData> | undefined {
  const b = built.get(tables);
  built.delete(tables);
  return b;
}

/** Where the worker's code is: beside this file, or in the executable (bun build --compile). */
function workerUrl(): string {
  const here = new URL('./config-worker.ts', import.meta.url);
  return here.href.includes('/$bunfs/') ? 'file:///$bunfs/root/daemon/config-worker.js' : here.href;
}

/** The config of a worker's reply: the packed rules files are wrapped, not copied. */
function unpack(reply: Extract<WorkerReply, { ok: true }>): Config {
  const tables: Table[] = reply.tables.map((t) => ({ id: t.id, group: t.group, rules: ruleList(t.runs.map((r) => ('rule' in r ? r.rule : PackedRules.fromData(r.packed)))) }));
  const cfg: Config = { ...reply.config, tables };
  built.set(cfg.tables, reply.built);
  return cfg;
}

export interface OffThreadOptions {
  log: Logger;
  /** The config's warnings (logged by the CLI, as at start). */
  onWarnings?: (warnings: Problem[]) => void;
  /** The network interfaces here, for the warnings (the worker gets the list). */
  interfaces?: () => readonly string[] | undefined;
  /** Tables up to this size are searched for rules that never win (`run`'s limit). */
  maxShadowRules: number;
  /** For the in-thread fallback (tests pass their own files). */
  files?: LoadDeps;
}

/**
 * `reloadConfig` for the daemon: the config of `values` (the flags `dnsseal run` got), read in a
 * worker. Rejects with the loader's error (file:line) when the file is invalid.
 */
export function offThreadConfig(values: Map<string, string[]>, opts: OffThreadOptions): () => Promise<Config> {
  let fallback = false;
  const inThread = () => {
    const r = checkConfig(values, opts.files ?? fileDeps, { interfaces: opts.interfaces, maxShadowRules: opts.maxShadowRules });
    opts.onWarnings?.(r.warnings);
    if (!r.config) throw new ConfigError('', r.errors.map(problemText).join('\n'));
    return r.config;
  };
  return async () => {
    if (fallback) return inThread();
    let worker: Worker;
    try {
      worker = new Worker(workerUrl(), { smol: true });
    } catch (err) {
      fallback = true;
      opts.log.warn('daemon: no worker for reloads; the config is read on the event loop (queries wait meanwhile)', { err: String(err) });
      return inThread();
    }
    try {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const reply = await new Promise<WorkerReply>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent<WorkerReply>) => resolve(e.data);
        worker.onerror = (e) => reject(new DnssealError('daemon', 'worker_failed', `the config worker failed: ${e.message}`));
        // a million rules take a few seconds; a worker silent for this long is stuck: refuse the reload
        timer = setTimeout(() => reject(new DnssealError('daemon', 'worker_timeout', `the config worker gave no answer within ${WORKER_TIMEOUT_MS / 1000} s`)), WORKER_TIMEOUT_MS);
        const interfaces = opts.interfaces?.();
        worker.postMessage({ values: [...values], maxShadowRules: opts.maxShadowRules, ...(interfaces ? { interfaces: [...interfaces] } : {}) } satisfies WorkerRequest);
      }).finally(() => clearTimeout(timer));
      // its heap goes now, before the config is put back together here (a lower peak)
      worker.terminate();
      opts.onWarnings?.(reply.warnings);
      // the check's message as it is (file:line: key: what); the daemon says the reload was refused
      if (!reply.ok) throw new ConfigError('', reply.message);
      return unpack(reply);
    } catch (err) {
      if (err instanceof DnssealError && err.code === 'worker_failed') {
        fallback = true;
        opts.log.warn('daemon: the config worker could not run; reloads read the config on the event loop (queries wait meanwhile)', { err: err.message });
        return inThread();
      }
      throw err;
    } finally {
      worker.terminate();
    }
  };
}
