/**
 * The worker a reload reads the config in (off the event loop that answers queries): it loads
 * the file with the daemon's flags exactly as `dnsseal run` did (the one-pass check: every
 * error with its file:line, the warnings), builds the policy's matchers, and hands back
 *
 *   - the config, its tables' rules as runs: plain rules as objects, rules files packed
 *     (text and typed arrays; src/policy/packed-rules.ts),
 *   - the built matchers as typed arrays (src/policy/matcher.ts `toData`),
 *
 * every array transferred, not copied. The main side is off-thread-config.ts. Built into the
 * executable as a second entry point (Makefile: `bun build --compile src/main.ts
 * src/daemon/config-worker.ts`).
 */
import { setPriority } from 'node:os';
import { checkConfig, problemText, type Problem } from '../config/check.ts';
import { fileDeps } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import type { PackedRulesData } from '../policy/packed-rules.ts';
import { ruleRuns } from '../policy/rule-list.ts';
import { Policy } from '../policy/policy.ts';
import type { MatcherData } from '../policy/matcher.ts';
import type { Rule, Table } from '../policy/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';

/** A table as it crosses: its rules in runs. */
export interface TableRuns {
  id: string;
  group: number;
  runs: Array<{ rule: Rule } | { packed: PackedRulesData }>;
}

export interface WorkerRequest {
  /** The daemon's configuration flags (`--config FILE` and the rest), as `loadConfig` takes them. */
  values: Array<[string, string[]]>;
  /** The network interfaces here (the check warns about a lan/wan that does not exist); absent: not listed. */
  interfaces?: string[];
  /** Tables up to this size are searched for rules that never win (as `run` does). */
  maxShadowRules: number;
}

export type WorkerReply =
  | { ok: true; config: Omit<Config, 'tables'>; tables: TableRuns[]; built: Map<string, MatcherData>; warnings: Problem[] }
  | { ok: false; code: string; message: string; warnings: Problem[] };

/** The config and its matchers as data, with the buffers to transfer. */
export function packConfig(cfg: Config): { reply: WorkerReply; buffers: ArrayBuffer[] } {
  const buffers: ArrayBuffer[] = [];
  const tables: TableRuns[] = cfg.tables.map((t: Table) => ({
    id: t.id,
    group: t.group,
    runs: ruleRuns(t.rules).map((r) => {
      if ('rule' in r) return { rule: r.rule };
      const d = r.packed.toData();
      buffers.push(...d.buffers);
      return { packed: d.data };
    }),
  }));
  // built after the runs were taken: the matchers' arrays are handed over, the rules' too
  const { built, buffers: matcherBuffers } = Policy.fromConfig(cfg).exportMatchers();
  buffers.push(...matcherBuffers);
  const { tables: _, ...rest } = cfg;
  return { reply: { ok: true, config: rest, tables, built, warnings: [] }, buffers };
}

declare const self: Worker;

if (typeof self !== 'undefined' && !Bun.isMainThread) {
  self.onmessage = (e: MessageEvent<WorkerRequest>) => {
    try {
      // the least priority (this thread only, on Linux): a CPU the daemon shares with this
      // worker goes to the event loop answering queries first
      setPriority(19);
    } catch {
      /* not allowed: the reload only competes a little more */
    }
    try {
      const interfaces = e.data.interfaces;
      const r = checkConfig(new Map(e.data.values), fileDeps, { interfaces: () => interfaces, maxShadowRules: e.data.maxShadowRules });
      if (!r.config) {
        self.postMessage({ ok: false, code: 'config_invalid', message: r.errors.map(problemText).join('\n'), warnings: r.warnings } satisfies WorkerReply);
        return;
      }
      Bun.gc(true); // the parse's garbage goes before the matchers are built: a lower peak
      const { reply, buffers } = packConfig(r.config);
      if (reply.ok) reply.warnings = r.warnings;
      self.postMessage(reply, buffers);
    } catch (err) {
      const reply: WorkerReply = {
        ok: false,
        code: err instanceof DnssealError ? err.code : 'reload_invalid',
        message: errorMessage(err),
        warnings: [],
      };
      self.postMessage(reply);
    }
  };
}
