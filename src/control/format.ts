/**
 * Human output of `dnsseal list` (the `--json` form prints the rows as they are).
 *
 *   GROUP  ADDRESS      CHANNEL  NAMES                          EXPIRES-IN  IDLE
 *   0      192.0.2.10   hub      www.corp.example,corp.example  4m59s       12s
 *
 * Intercept mode adds the pool address the group's clients were given, before the real one:
 *
 *   GROUP  INTERCEPT    ADDRESS      CHANNEL  NAMES                          EXPIRES-IN  IDLE
 *   0      100.64.0.1   192.0.2.10   hub      www.corp.example               4m59s       12s
 *
 * An entry whose peer channel failed shows `CHANNEL!` and a footnote line with the reason: its traffic is
 * dropped (fail closed) until an answer brings the SA up. A retired entry shows `CHANNEL~` and a
 * legend line under the table.
 */
import type { ListRow } from './handlers.ts';

/** 59s, 4m05s, 2h03m, 3d04h. */
export function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

function expiresCell(r: ListRow): string {
  if (r.static || r.expiresInS === null) return 'static';
  return r.expiresInS === 0 ? 'expired' : formatDuration(r.expiresInS);
}

export function formatList(rows: ListRow[]): string {
  if (rows.length === 0) return 'no entries\n';
  const icpt = rows.some((r) => r.intercept !== undefined);
  const table = [
    ['GROUP', ...(icpt ? ['INTERCEPT'] : []), 'ADDRESS', 'CHANNEL', 'NAMES', 'EXPIRES-IN', 'IDLE'],
    ...rows.map((r) => [
      String(r.group),
      ...(icpt ? [r.intercept ?? '-'] : []),
      r.address,
      r.blocked !== undefined ? `${r.channel}!` : r.retired ? `${r.channel}~` : r.channel,
      r.names.length > 0 ? r.names.join(',') : '-',
      expiresCell(r),
      r.idleS === null ? '-' : formatDuration(r.idleS),
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
  if (rows.some((r) => r.retired)) {
    lines.push(
      '',
      '~: retired (hold ran out and idle, or flushed): tunnel traffic still goes through the channel, peer traffic is dropped;',
      '   a new answer brings it back, and it is removed once `retire` passes with no packet.',
    );
  }
  const blocked = rows.filter((r) => r.blocked !== undefined);
  if (blocked.length > 0) {
    lines.push('', `!: the peer channel failed; traffic to ${blocked.length === 1 ? 'this address' : 'these addresses'} is dropped until an answer brings the SA up:`);
    for (const r of blocked) lines.push(`   ${r.address}: ${r.blocked}`);
  }
  return lines.join('\n') + '\n';
}
