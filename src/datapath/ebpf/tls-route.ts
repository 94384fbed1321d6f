/**
 * Gateway mode's policy route for the tls relay (bpf/lib/tls_steer.h): packets the LAN program
 * marked DNSSEAL_TLS_LOCAL_MARK are delivered locally (to the relay's socket they were assigned
 * to), both families:
 *   ip rule add fwmark 0x5e510000/0xffffffff lookup 24145 pref 24145
 *   ip route replace local default dev lo table 24145
 * Installed at start (idempotent: an existing rule is not added twice), removed by `dnsseal down`.
 * Run with `ip`, at start-up and teardown only, like tc.
 */
import { DnssealError } from '../../util/errors.ts';
import { TLS_LOCAL_MARK, TLS_TABLE } from '../tls-layout.ts';

type Run = (argv: string[]) => { code: number; out: string; err: string };

const run: Run = (argv) => {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
};

const MARK = `0x${TLS_LOCAL_MARK.toString(16)}/0xffffffff`;

function hasRule(fam: '-4' | '-6', exec: Run): boolean {
  return exec(['ip', fam, 'rule', 'show', 'pref', String(TLS_TABLE)]).out.includes(`lookup ${TLS_TABLE}`);
}

export function installTlsRoute(exec: Run = run): void {
  for (const fam of ['-4', '-6'] as const) {
    const route = exec(['ip', fam, 'route', 'replace', 'local', 'default', 'dev', 'lo', 'table', String(TLS_TABLE)]);
    if (route.code !== 0) throw new DnssealError('datapath', 'tls_route', `ip ${fam} route replace local default dev lo table ${TLS_TABLE}: ${route.err.trim()}`);
    if (hasRule(fam, exec)) continue;
    const rule = exec(['ip', fam, 'rule', 'add', 'fwmark', MARK, 'lookup', String(TLS_TABLE), 'pref', String(TLS_TABLE)]);
    if (rule.code !== 0) throw new DnssealError('datapath', 'tls_route', `ip ${fam} rule add fwmark ${MARK} lookup ${TLS_TABLE}: ${rule.err.trim()}`);
  }
}

/** Removes what installTlsRoute added; returns a line per object removed. */
export function removeTlsRoute(exec: Run = run): string[] {
  const out: string[] = [];
  for (const fam of ['-4', '-6'] as const) {
    const routed = exec(['ip', fam, 'route', 'show', 'table', String(TLS_TABLE)]).out.trim() !== '';
    while (hasRule(fam, exec)) {
      if (exec(['ip', fam, 'rule', 'del', 'pref', String(TLS_TABLE)]).code !== 0) break;
      out.push(`rule ${fam} pref ${TLS_TABLE}`);
    }
    if (routed && exec(['ip', fam, 'route', 'flush', 'table', String(TLS_TABLE)]).code === 0) out.push(`route ${fam} table ${TLS_TABLE}`);
  }
  return out;
}
