import { formatDuration } from '@jailkeeper/core/operator';
import { checkConfig, loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';
import { isoTime, printable, table } from '../format.js';
import { replay } from '../replay.js';
import { banDetails, brokenLinkLines, judgedLines, storyLines } from '../replay-text.js';
import { type Io, printJson, usage, type Values } from './shared.js';

/** `jailkeeper replay`: an access log through the config's jails, and the bans it would have made. */
export async function replayCommand(file: string, values: Values, io: Io): Promise<void> {
  if (values.config === undefined) usage('replay needs --config <file>, the jailkeeper config to try.');
  const config = await loadConfig(values.config);
  const problems = checkConfig(config);
  if (problems.length > 0) {
    throw new CliError(
      EXIT.problems,
      `The config has problems; run jailkeeper check-config ${values.config}.\n${problems.map((p) => `${p.code} ${p.option}: ${p.message}`).join('\n')}`,
    );
  }
  const format = values.format as 'combined' | 'json' | undefined;
  if (format !== undefined && format !== 'combined' && format !== 'json')
    usage('replay --format is combined or json.');
  const progress = io.isTTY && !values['no-progress'] && !values.json;
  let lastDraw = 0;
  let report: Awaited<ReturnType<typeof replay>>;
  try {
    report = await replay(file, config, {
      format,
      explain: values.explain,
      onProgress: progress
        ? (read, size) => {
            const now = Date.now();
            if (now - lastDraw < 200 && read < size) return;
            lastDraw = now;
            const share = size === 0 ? 1 : read / size;
            const filled = Math.round(share * 30);
            io.err(`\r[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${(share * 100).toFixed(0)}%`);
          }
        : undefined,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') usage(`No log file at ${file}.`);
    throw error;
  }
  if (progress) io.err('\n');
  if (values.json) {
    printJson(io, report);
    return;
  }
  const lines: string[] = [];
  const span =
    report.fromMs === null || report.toMs === null
      ? ''
      : `, ${isoTime(report.fromMs)} to ${isoTime(report.toMs)}`;
  lines.push(
    `Replayed ${report.lines} lines (${report.format}${span}) in ${report.seconds} s: ${report.linesPerSecond} lines/s.`,
    `${report.parsed} parsed, ${report.unparseable} unparseable${report.unattributed > 0 ? `, ${report.unattributed} not attributable to a client (the client field is not an address)` : ''}.`,
  );
  for (const sample of report.unparseableSamples)
    lines.push(`  line ${sample.line}: ${printable(sample.text.slice(0, 100))}`);
  for (const sample of report.unattributedSamples)
    lines.push(`  line ${sample.line} (no client address): ${printable(sample.text.slice(0, 100))}`);
  if (report.localTimes > 0)
    lines.push(
      `${report.localTimes} line(s) had a time without a zone: read as this machine's local time (${report.timeZone}); set TZ to read them in another zone.`,
    );
  lines.push(report.note, '');
  lines.push(
    table(
      ['JAIL', 'COUNTED', 'EXEMPT', 'IGNORED', 'PARDONED', 'BANS'],
      Object.entries(report.jails).map(([name, j]) => [
        name,
        String(j.counted),
        String(j.exempt),
        String(j.ignored),
        String(j.pardoned),
        String(j.bans),
      ]),
    ),
  );
  for (const [name, j] of Object.entries(report.jails)) {
    const paths = Object.entries(j.exemptPaths);
    if (paths.length > 0) {
      lines.push('', `Exempt in ${name} (these responses would not count):`);
      for (const [path, n] of paths) lines.push(`  ${n}  ${printable(path)}`);
    }
  }
  lines.push(...judgedLines(report));
  const recidive = report.bans.filter((b) => !(b.jail in report.jails));
  lines.push(
    '',
    `Bans: ${report.bans.length}${recidive.length > 0 ? ` (${recidive.length} recidive)` : ''}; requests that would then have been refused: ${report.refused}.`,
  );
  const shown = values.all ? report.bans : report.bans.slice(0, 50);
  if (shown.length > 0) {
    lines.push(
      table(
        ['AT', 'ADDRESS', 'JAIL', 'FOR', 'BAN #', 'LINE'],
        shown.map((b) => [
          isoTime(b.atMs),
          b.ip ?? b.client,
          b.jail,
          b.untilMs === null ? 'permanent' : formatDuration(b.untilMs - b.atMs),
          String(b.banCount),
          String(b.line),
        ]),
      ),
    );
    if (shown.length < report.bans.length)
      lines.push(
        `…and ${report.bans.length - shown.length} more (--all lists them, --json gives everything).`,
      );
    lines.push(...banDetails(shown));
  }
  lines.push(...brokenLinkLines(report));
  if (report.explain !== undefined) lines.push(...storyLines(report.explain));
  io.out(`${lines.join('\n')}\n`);
}
