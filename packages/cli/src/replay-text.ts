import { formatDuration } from '@jailkeeper/core/operator';
import { isoTime, printable } from './format.js';
import type { ReplayBan, ReplayReport } from './replay.js';
import type { ClientProfile, ClientStory } from './replay-profile.js';

/** The request of a log line, short: `GET /wp-login.php 404`, or the line itself when it has no quotes. */
function request(text: string): string {
  const open = text.indexOf('"');
  const close = open === -1 ? -1 : text.indexOf('"', open + 1);
  if (close === -1) return printable(text.slice(0, 120));
  const status = /^\s*(\d{3})/.exec(text.slice(close + 1))?.[1] ?? '';
  const [method = '', target = ''] = text.slice(open + 1, close).split(' ');
  return printable(`${method} ${target.slice(0, 100)} ${status}`.trim());
}

function profileText(p: ClientProfile): string {
  const span = p.lastMs > p.firstMs ? ` over ${formatDuration(p.lastMs - p.firstMs)}` : '';
  return `${p.requests} requests${span}, ${p.successes} successes, ${p.failures} failures on ${p.distinctFailingPaths} distinct paths; user agent ${JSON.stringify(printable(p.userAgent.slice(0, 100)))}${p.userAgents > 1 ? ` (and ${p.userAgents - 1} other${p.userAgents > 2 ? 's' : ''})` : ''}`;
}

/** The counted failures shown under a ban, the last ones. */
const EVIDENCE_SHOWN = 5;

/** Each ban with its evidence lines and the client's profile; bans that look like a reader flagged. */
export function banDetails(bans: readonly ReplayBan[]): string[] {
  const lines: string[] = [];
  const legit = bans.filter((b) => b.looksLegitimate).length;
  lines.push(
    '',
    `Why each ban${legit > 0 ? ` (${legit} look${legit === 1 ? 's' : ''} like a legitimate visitor: many successes, few distinct failures; worth a look before going live)` : ''}:`,
  );
  for (const ban of bans) {
    const forText = ban.untilMs === null ? 'permanently' : `for ${formatDuration(ban.untilMs - ban.atMs)}`;
    lines.push(
      '',
      `${ban.looksLegitimate ? '!! ' : ''}${ban.ip ?? ban.client} banned in ${ban.jail} ${forText} at ${isoTime(ban.atMs)} (line ${ban.line})`,
    );
    if (ban.profile !== null) lines.push(`   client: ${profileText(ban.profile)}`);
    if (ban.looksLegitimate)
      lines.push(
        '   looks like a legitimate visitor: check whether its failures are the site’s own (a missing asset, a broken link)',
      );
    const shown = ban.evidence.slice(-EVIDENCE_SHOWN);
    if (shown.length < ban.evidence.length)
      lines.push(`   …${ban.evidence.length - shown.length} earlier counted failures (--json lists them)`);
    for (const e of shown) {
      lines.push(`   line ${e.line}: ${request(e.text)}${e.probe ? '  (probe)' : ''}`);
    }
  }
  return lines;
}

/** The broken links the replay found. */
export function brokenLinkLines(report: ReplayReport): string[] {
  if (report.brokenLinks.length === 0) return [];
  const lines = ['', 'Broken links (404s that many networks got; counted for nobody from then on):'];
  const seen = new Map<string, number>();
  for (const link of report.brokenLinks) {
    const key = `${link.jail}\u0000${link.path}`;
    const again = seen.get(key);
    if (again !== undefined) {
      seen.set(key, again + 1);
      continue;
    }
    seen.set(key, 0);
    lines.push(
      `  ${printable(link.path)}  in ${link.jail}: ${link.networks} networks by ${isoTime(link.atMs)} (line ${link.line})`,
    );
  }
  const returned = [...seen.values()].filter((n) => n > 0).length;
  if (returned > 0)
    lines.push(`  (${returned} of them stopped for a while and became shared again: --json lists each time)`);
  return lines;
}

/** Left-out failures per jail (distinct paths, shared paths), when any. */
export function judgedLines(report: ReplayReport): string[] {
  const lines: string[] = [];
  for (const [name, j] of Object.entries(report.jails)) {
    if (j.repeated === 0 && j.shared === 0) continue;
    lines.push(
      `Not counted in ${name}: ${j.repeated} repeated failure${j.repeated === 1 ? '' : 's'} of a path already counted, ${j.shared} on broken links.`,
    );
  }
  return lines.length > 0 ? ['', ...lines] : lines;
}

/** `--explain <address>`: one client's story, line by line. */
export function storyLines(story: ClientStory): string[] {
  const lines = [
    '',
    `The story of ${story.address}${story.client !== story.address ? ` (counted as ${story.client})` : ''}:`,
  ];
  if (story.profile === null) {
    lines.push('  it has no line in this log.');
    return lines;
  }
  lines.push(`  ${profileText(story.profile)}`);
  lines.push(`  from ${isoTime(story.profile.firstMs)} to ${isoTime(story.profile.lastMs)}`);
  for (const l of story.lines) lines.push(`  line ${l.line}: ${request(l.text)}  -> ${l.outcome}`);
  if (story.more > 0) lines.push(`  …and ${story.more} more lines (--json gives the first 500 too).`);
  return lines;
}
