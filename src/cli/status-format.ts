/**
 * `dnsseal status` for a person: the status document (src/daemon/status.ts, printed as it is by
 * `--json`) in the order an operator asks about it — what runs and since when, on what config,
 * what is protected, whether it can protect, the channels and upstreams, then the query figures
 * with each outcome explained and the latency histogram with its bounds.
 */
import type { LatencyBucket, StatusReport } from '../daemon/status.ts';
import { formatCount, formatDuration } from '../control/format.ts';

/** What each query outcome means (also in the README's status table). */
export const OUTCOMES: Record<string, string> = {
  answer: 'answered; no rule protects the name, the answer went out as the upstream gave it',
  protected: 'answered after its addresses were registered (in the map, the channel ready)',
  servfail: 'answered SERVFAIL (reasons below)',
  formerr: 'a malformed query, answered FORMERR',
  error: 'a query dnsseal does not serve (another opcode, several questions), answered with an error code',
  canary: 'use-application-dns.net, answered NXDOMAIN (keeps browsers off their own DNS-over-HTTPS)',
  drop: 'not answered (not a query, or an internal failure: fails closed)',
  refused: 'from a sender allow_clients leaves out, answered REFUSED',
};

/** What each SERVFAIL reason means. */
export const SERVFAIL_REASONS: Record<string, string> = {
  timeout: 'the upstream did not answer within upstream_timeout',
  upstream: 'the upstream could not be reached or its answer was unusable',
  malformed_answer: 'a protected answer that could not be checked before release',
  register: 'the addresses could not be registered (map full, the data path lost, kernel or strongSwan error, peer SA not up): fail closed',
  unverified: "a policy server's answer whose TSIG did not verify",
  intercept: 'the intercept pool had no free address',
};

/** `3m ago` from two ISO times. */
function ago(iso: string, nowMs: number): string {
  return `${formatDuration(Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000)))} ago`;
}

/** Columns padded to the widest cell (all cells here are short). */
function table(rows: string[][], indent = ''): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function bound(le: number | null, prev: number | null): string {
  const ms = (s: number) => (s < 1 ? `${+(s * 1000).toPrecision(3)} ms` : `${s} s`);
  if (le === null) return `> ${prev === null ? '0' : ms(prev)}`;
  return `≤ ${ms(le)}`;
}

function histogram(buckets: LatencyBucket[]): string[] {
  const rows: string[][] = [];
  let prev: number | null = null;
  for (const b of buckets) {
    rows.push([bound(b.le, prev), formatCount(b.count)]);
    prev = b.le;
  }
  // right-align the counts
  const w = Math.max(...rows.map((r) => r[1]!.length));
  return table(rows.map(([a, c]) => [a!, c!.padStart(w)]), '  ');
}

function counts(rec: Record<string, number>, meanings?: Record<string, string>): string[] {
  const w = Math.max(...Object.values(rec).map((v) => formatCount(v).length));
  return table(Object.entries(rec).map(([k, v]) => [k, formatCount(v).padStart(w), meanings?.[k] ?? '']), '  ');
}

const nonZero = (rec: Record<string, number>) =>
  Object.entries(rec)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${formatCount(v)}`)
    .join(', ') || 'none';

function cacheLine(c: StatusReport['cache']): string {
  if (!c) return 'none in this daemon';
  if (!c.enabled) return 'off (cache_size 0: every query goes upstream)';
  const ratio = c.hit_ratio === null ? '-' : `${(c.hit_ratio * 100).toFixed(1)}%`;
  return (
    `${formatCount(c.entries)} of ${formatCount(c.max_entries)} answers (${formatCount(Math.round(c.bytes / 1024))} of ${formatCount(Math.round(c.max_bytes / 1024))} KiB), ` +
    `hits ${formatCount(c.hits)}, misses ${formatCount(c.misses)} (${ratio} hits), stale ${formatCount(c.stale_answers)}, evicted: ${nonZero(c.evictions)}`
  );
}

export function formatStatus(s: StatusReport, nowMs: number): string {
  const out: string[] = [];
  out.push(`dnsseal ${s.version}, mode ${s.mode}, up ${formatDuration(s.uptime_s)} (since ${s.started_at}, pid ${s.pid})`);
  const c = s.config;
  let cfg = `${c.source} (loaded ${ago(c.loaded_at, nowMs)}`;
  if (c.modified_at) cfg += `, file modified ${ago(c.modified_at, nowMs)}`;
  cfg += ')';
  if (c.changed_since_load) cfg += ' — changed since it was loaded: "dnsseal reload" applies it';
  const lines: string[][] = [
    ['config', cfg],
    ['listen', s.listen.join(', ') || '-'],
    ['rules', `${formatCount(s.rules.rules)} in ${formatCount(s.rules.tables)} table(s), ${formatCount(s.rules.clients)} client range(s), ${formatCount(s.rules.statics)} static(s)`],
    [
      'entries',
      `${formatCount(s.entries.total)}: ${formatCount(s.entries.live)} live, ${formatCount(s.entries.retired)} retired, ${formatCount(s.entries.blocked)} blocked, ${formatCount(s.entries.static)} static` +
        (Object.keys(s.entries.by_channel).length ? ` (${nonZero(s.entries.by_channel)})` : ''),
    ],
    ['map', s.map.capacity !== null ? `${formatCount(s.map.used)} of ${formatCount(s.map.capacity)} (${((s.map.fill ?? 0) * 100).toFixed(1)}% full)` : `${formatCount(s.map.used)} (no fixed capacity)`],
    ['data path', `${s.datapath.kind}, ${s.datapath.up ? 'up' : `LOST: ${s.datapath.reason} — protected names get SERVFAIL until it is back`}`],
    [
      'ipsec',
      s.ipsec.vici.state === 'none'
        ? `${s.ipsec.kind}`
        : `${s.ipsec.kind}, charon ${s.ipsec.vici.state} since ${s.ipsec.vici.since}${s.ipsec.vici.last_error ? ` (${s.ipsec.vici.last_error})` : ''}`,
    ],
    ['enforce_dns', s.enforce_dns],
    ['cache', cacheLine(s.cache)],
  ];
  if (s.tls) lines.push(['tls', Object.entries(s.tls).map(([k, v]) => `${k} ${String(v)}`).join(', ')]);
  const r = s.reload;
  if (r.last_at) lines.push(['reload', r.last_ok ? `last ${ago(r.last_at, nowMs)}, applied` : `last ${ago(r.last_at, nowMs)}, REFUSED: ${r.last_error}`]);
  out.push(...table(lines));
  if (r.restart_needed.length) out.push(`restart needed for: ${r.restart_needed.join(', ')} (changed in the file; a reload cannot apply them, their running values stay)`);

  out.push('', 'channels:');
  if (s.channels.length === 0) out.push('  none');
  else {
    out.push(
      ...table(
        [
          ['NAME', 'KIND', 'PROTOCOL', 'STATE', 'SINCE'],
          ...s.channels.map((ch) => [
            ch.name,
            ch.kind,
            ch.protocol,
            ch.kind === 'peer' ? `${ch.peers_up} peer SA(s) up` : `SA ${ch.state}`,
            ch.since ? `${ch.since} (${ago(ch.since, nowMs)})` : ch.kind === 'peer' ? '-' : 'start',
          ]),
        ],
        '  ',
      ),
    );
  }
  out.push('', 'upstreams:');
  out.push(
    ...table(
      [
        ['NAME', 'SERVER', 'HEALTH', 'LATENCY', 'ANSWERS', 'FAILURES'],
        ...s.upstreams.map((u) => [
          u.index === 0 ? u.name : '',
          u.server,
          u.health === 'up' ? 'up' : `DOWN since ${u.since}${u.last_error ? ` (${u.errno ?? u.last_error})` : ''}`,
          u.latency_ms === null ? '-' : `${u.latency_ms} ms`,
          formatCount(u.answers),
          nonZero(u.failures),
        ]),
      ],
      '  ',
    ),
  );
  const total = Object.values(s.queries).reduce((a, b) => a + b, 0);
  out.push('', `queries (${formatCount(total)} since start):`, ...counts(s.queries, OUTCOMES));
  if (s.queries.servfail > 0) out.push('', 'servfail by reason:', ...counts(s.servfail, SERVFAIL_REASONS));
  const h = s.upstream_latency;
  out.push('', `upstream latency (${formatCount(h.count)} answers${h.count ? `, mean ${((h.sum_s / h.count) * 1000).toFixed(1)} ms` : ''}; answers per bucket):`, ...histogram(h.buckets));
  const k = s.counters;
  out.push(
    '',
    'other counters:',
    ...table(
      [
        ['upstream', `timeouts ${formatCount(k.upstream_timeouts)}, send failed ${formatCount(k.upstream_send_failed)}, TCP retries ${formatCount(k.upstream_tcp_retries)}, joined in flight ${formatCount(k.upstream_shared)}`],
        ['ignored answers', `${nonZero(k.upstream_ignored)} (not matching id, question or source: possible forgeries)`],
        ['clients', `send failed ${formatCount(k.client_send_failed)}, TCP connections ${formatCount(k.tcp_connections)}, TCP closed: ${nonZero(k.tcp_closed)}`],
        ['client subnet', nonZero(k.client_subnet)],
        ['stray records', `${formatCount(k.stray_records_removed)} removed from protected answers`],
      ],
      '  ',
    ),
  );
  return out.join('\n') + '\n';
}
