/**
 * The kernel's XFRM error counters as a metric. When a peer's SA is not up (yet), the XFRM trap
 * or block policy drops the packets before they reach the leak guard on the WAN, so dnsseal's
 * own drop counters stay at zero; the kernel counts those drops in `/proc/net/xfrm_stat`
 * (`XfrmOutNoStates` and friends). At every scrape that file — of the network namespace the
 * daemon runs in, since `/proc/net` is `/proc/self/net` — is read and each line exported as
 * `dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"}`.
 *
 * A kernel without XFRM has no such file: nothing is exported and that is logged once. Reading
 * never throws (a scrape must not fail because of it); malformed lines are skipped.
 */
import { readFileSync } from 'node:fs';
import type { Metrics } from './metrics.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

export const XFRM_STAT_PATH = '/proc/net/xfrm_stat';
export const XFRM_ERRORS_METRIC = 'dnsseal_xfrm_errors_total';
const HELP = "The kernel's XFRM error counters (/proc/net/xfrm_stat), e.g. XfrmOutNoStates: packets a trap or block policy dropped because no SA was up";

/** The kernel has about 30 of these; more than this is not the file we expect. */
const MAX_COUNTERS = 64;
/** `XfrmInError`, `XfrmOutNoStates`, …: the kernel's names (label values stay bounded). */
const NAME = /^Xfrm[A-Za-z0-9]{1,60}$/;

/**
 * `XfrmOutNoStates  12` lines → [name, value] in file order. Lines that are not one such name
 * and one decimal count are skipped, as are repeated names (the first wins) and lines past
 * MAX_COUNTERS.
 */
export function parseXfrmStat(text: string): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (out.length >= MAX_COUNTERS) break;
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 2) continue;
    const [name, value] = fields as [string, string];
    if (!NAME.test(name) || !/^[0-9]{1,20}$/.test(value) || seen.has(name)) continue;
    const n = Number(value);
    if (!Number.isSafeInteger(n)) continue;
    seen.add(name);
    out.push([name, n]);
  }
  return out;
}

export interface XfrmStatOptions {
  metrics: Metrics;
  log: Logger;
  /** Default `/proc/net/xfrm_stat`; tests pass a fixture. */
  path?: string;
}

/** Registers `dnsseal_xfrm_errors_total`, read from the kernel at each collect. */
export function exportXfrmStat(opts: XfrmStatOptions): void {
  const path = opts.path ?? XFRM_STAT_PATH;
  let reported = false;
  opts.metrics.counterFrom(XFRM_ERRORS_METRIC, HELP, () => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (!reported) {
        reported = true;
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        // Once: a scrape every few seconds must not fill the log.
        opts.log[missing ? 'info' : 'warn'](
          missing ? 'xfrm: no XFRM counters in this kernel; dnsseal_xfrm_errors_total is not exported' : 'xfrm: cannot read the XFRM counters; dnsseal_xfrm_errors_total is not exported',
          { path, err: errorMessage(err) },
        );
      }
      return [];
    }
    return parseXfrmStat(text).map(([name, value]) => [{ counter: name }, value]);
  });
}
