/**
 * Human output of `dnsseal list` (the `--json` form prints the rows as they are, every name).
 *
 *   TABLE    ADDRESS     CHANNEL  EXPIRES-IN  IDLE  NAMES
 *   default  192.0.2.10  hub      4m59s       12s   www.corp.example, corp.example
 *   default  192.0.2.11  hub      4m59s       -     a.cdn.example, b.cdn.example … +19,998
 *
 * NAMES is the last column and never wider than NAMES_WIDTH: an address that 20,000 names
 * resolve to (a CDN) shows the first names and a count, so no row, and no column, grows with the
 * longest cell — the output is linear in the number of rows, whatever the names. Intercept
 * mode adds the pool address the table's clients were given, before the real one:
 *
 *   TABLE    INTERCEPT   ADDRESS     CHANNEL  EXPIRES-IN  IDLE  NAMES
 *   default  100.64.0.1  192.0.2.10  hub      4m59s       12s   www.corp.example
 *
 * An entry whose peer channel failed shows `CHANNEL!` and a footnote line with the reason: its
 * traffic is dropped (fail closed) until an answer brings the SA up. A retired entry shows
 * `CHANNEL~` and a legend line under the table. A row whose group no running table has shows
 * the group number.
 */
import type { ListRow } from './list-rows.ts';

/** The widest NAMES cell, characters (a single name longer than this is shown whole). */
export const NAMES_WIDTH = 60;

/** 59s, 4m05s, 2h03m, 3d04h. */
export function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** 19998 → `19,998`. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * The first names that fit in `width` characters, then `… +N` for the rest: reads only as many
 * names as it shows, so 20,000 names cost no more than three.
 */
export function namesCell(names: readonly string[], width = NAMES_WIDTH): string {
  if (names.length === 0) return '-';
  let out = names[0]!;
  let shown = 1;
  while (shown < names.length) {
    const next = names[shown]!;
    const left = names.length - shown - 1;
    const tail = left > 0 ? ` … +${formatCount(left)}`.length : 0;
    if (out.length + 2 + next.length + tail > width) break;
    out += `, ${next}`;
    shown++;
  }
  return shown < names.length ? `${out} … +${formatCount(names.length - shown)}` : out;
}

function expiresCell(r: ListRow): string {
  if (r.static || r.expiresInS === null) return 'static';
  return r.expiresInS === 0 ? 'expired' : formatDuration(r.expiresInS);
}

export function formatList(rows: ListRow[]): string {
  if (rows.length === 0) return 'no entries\n';
  const icpt = rows.some((r) => r.intercept !== undefined);
  const header = ['TABLE', ...(icpt ? ['INTERCEPT'] : []), 'ADDRESS', 'CHANNEL', 'EXPIRES-IN', 'IDLE', 'NAMES'];
  let truncated = false;
  const cells = rows.map((r) => {
    const names = namesCell(r.names);
    if (names.includes(' … +')) truncated = true; // names hold no spaces: only the count does
    return [
      r.table ?? String(r.group),
      ...(icpt ? [r.intercept ?? '-'] : []),
      r.address,
      r.blocked !== undefined ? `${r.channel}!` : r.retired ? `${r.channel}~` : r.channel,
      expiresCell(r),
      r.idleS === null ? '-' : formatDuration(r.idleS),
      names,
    ];
  });
  // every column but the last (NAMES, bounded) is padded to its widest cell; those cells are
  // short by construction (table ids, addresses, channel names, durations)
  const widths = header.map((h, i) => (i === header.length - 1 ? 0 : cells.reduce((w, row) => Math.max(w, row[i]!.length), h.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  const lines = [line(header)];
  for (const row of cells) lines.push(line(row));
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
  if (truncated) lines.push('', '… +N: N more names hold the address; `dnsseal list --json` lists them all.');
  return lines.join('\n') + '\n';
}
