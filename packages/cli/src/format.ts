import { formatDuration } from '@jailkeeper/core/operator';
import type { BanRow, StatusReport } from './backend.js';

/** A plain text table: a header row, then rows, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Control characters never reach the terminal: a ban's reason can hold attacker-chosen text. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/**
 * The order `bans` lists them in, as text and as JSON: the newest ban first (what just happened is
 * on top), then by jail and address, so that the same bans always print in the same order.
 */
export function sortBans(bans: BanRow[]): BanRow[] {
  return [...bans].sort(
    (a, b) =>
      b.startMs - a.startMs ||
      (a.jail < b.jail ? -1 : a.jail > b.jail ? 1 : 0) ||
      (a.client < b.client ? -1 : a.client > b.client ? 1 : 0),
  );
}

export function bansTable(bans: BanRow[]): string {
  if (bans.length === 0) return 'No active bans.';
  return table(
    ['ADDRESS', 'JAIL', 'SINCE', 'TIME LEFT', 'BANS', 'REASON'],
    bans.map((b) => [
      b.client,
      b.jail,
      isoTime(b.startMs),
      b.timeLeftMs === null ? 'permanent' : formatDuration(b.timeLeftMs),
      String(b.banCount),
      printable(b.reason),
    ]),
  );
}

export function statusText(status: StatusReport, jail?: string): string {
  const names = Object.keys(status.jails);
  if (jail !== undefined) {
    const j = status.jails[jail];
    if (j === undefined) return '';
    return [
      `Status for the jail: ${jail}`,
      `|- Currently failed: ${j.currentlyFailed}`,
      `|- Total failed:     ${j.totalFailed ?? '-'}`,
      `|- Currently banned: ${j.currentlyBanned}`,
      `|- Total banned:     ${j.totalBanned ?? '-'}`,
      `\`- Banned list:      ${j.bannedClients.join(' ')}${j.bannedClients.length < j.currentlyBanned ? ` (${j.bannedClients.length} of ${j.currentlyBanned}; all: jailkeeper bans)` : ''}`,
    ].join('\n');
  }
  return [
    `Store: ${status.store}`,
    `Ignore list: ${status.ignoreIp.length === 0 ? '(empty)' : status.ignoreIp.join(' ')}`,
    '',
    table(
      ['JAIL', 'FAILING', 'BANNED', 'TOTAL FAILED', 'TOTAL BANNED'],
      names.map((n) => {
        const j = status.jails[n] as StatusReport['jails'][string];
        return [
          n,
          String(j.currentlyFailed),
          String(j.currentlyBanned),
          String(j.totalFailed ?? '-'),
          String(j.totalBanned ?? '-'),
        ];
      }),
    ),
  ].join('\n');
}
