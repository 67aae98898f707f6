import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import {
  formatDuration,
  JailkeeperError,
  type JailkeeperOptions,
  parseDuration,
  parseIp,
  type ResolvedOptions,
  resolveOptions,
  toBanTimeMs,
} from '@jailkeeper/core';
import { createConsoleServer, EXPORT_FORMATS, type ExportFormat } from '@jailkeeper/ops';
import type { Backend } from './backend.js';
import { checkConfig, loadConfig } from './config.js';
import { fleetBackend, fleetEvents } from './console-backend.js';
import { CliError, EXIT } from './errors.js';
import { importFail2ban } from './fail2ban.js';
import { type Fail2banConfigFiles, readFail2banConfig } from './fail2ban-files.js';
import { bansTable, isoTime, printable, statusText, table } from './format.js';
import { HttpBackend } from './http-backend.js';
import { RedisBackend } from './redis-backend.js';
import { replay } from './replay.js';
import { banDetails, brokenLinkLines, judgedLines, storyLines } from './replay-text.js';

/** Where output goes: the CLI's own streams, or a test's buffers. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly env: Record<string, string | undefined>;
  readonly isTTY: boolean;
}

export const USAGE = `Usage: jailkeeper <command> [options]

Commands (against --redis URL / REDIS_URL, or --url of an app's admin API with --token):
  status [jail]                          jails, failing and banned clients
  bans [--jail J]                        active bans with time left
  ban <ip> [--jail J] [--for 1h] [--reason text]
  unban <ip> [--jail J] | unban --all [--jail J]
  ignore add|remove <ip|cidr> | ignore list
  export --format F [--name N] [--jail J] [--out FILE] [--watch] [--interval 10s] [--exec CMD]
         formats: ${EXPORT_FORMATS.join(', ')}

The console for a whole fleet (a web page on loopback; sign in with the token):
  console [--port 9181] [--host 127.0.0.1] [--allow-remote CIDR,...|any] [--token T] [--config FILE]

Commands on files:
  check-config <file>                    every problem of a config, with its code
  replay <access.log> --config <file> [--format combined|json] [--all] [--explain <ip>] [--no-progress]
  import-fail2ban <dir|jail.local> [--filters DIR] [--out FILE]

Common options:
  --redis URL   --prefix jk:   --url URL   --token T (or JAILKEEPER_TOKEN)
  --config FILE (jail names and ignoreIp for status and ban)   --json   --help

Exit codes: 0 ok, 1 problems found, 2 wrong arguments, 3 Redis or the app unreachable,
4 token or caller refused, 5 operation refused (invalid address, unknown jail, ignored client).`;

const OPTIONS = {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  jail: { type: 'string' },
  for: { type: 'string' },
  reason: { type: 'string' },
  all: { type: 'boolean' },
  format: { type: 'string' },
  name: { type: 'string' },
  out: { type: 'string' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  exec: { type: 'string' },
  filters: { type: 'string' },
  'no-progress': { type: 'boolean' },
  explain: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'allow-remote': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function usage(message: string): never {
  throw new CliError(EXIT.usage, `${message}\nRun jailkeeper --help for the commands.`);
}

/** The jail names, ignore list and IPv6 grouping of a config file, and its thresholds when it resolves. */
async function configFacts(values: Values): Promise<{
  jails: string[];
  ignoreIp: string[];
  ipv6Subnet: number | undefined;
  resolved: ResolvedOptions | undefined;
}> {
  if (values.config === undefined)
    return { jails: [], ignoreIp: [], ipv6Subnet: undefined, resolved: undefined };
  const config = await loadConfig(values.config);
  let resolved: ResolvedOptions | undefined;
  try {
    resolved = resolveOptions(config as unknown as JailkeeperOptions);
  } catch {
    resolved = undefined; // check-config says why; the console then shows names without thresholds
  }
  return {
    jails: Object.keys((config.jails ?? {}) as object),
    ignoreIp: Array.isArray(config.ignoreIp) ? (config.ignoreIp as string[]) : [],
    ipv6Subnet: typeof config.ipv6Subnet === 'number' ? config.ipv6Subnet : undefined,
    resolved,
  };
}

/**
 * `jailkeeper console`: the operators' console for a whole fleet, from the shared Redis store, on
 * loopback unless told otherwise. Runs until SIGINT or SIGTERM.
 */
async function consoleCommand(values: Values, io: Io, signal: AbortSignal): Promise<void> {
  if (values.url !== undefined) {
    usage(
      "console serves a whole fleet from its Redis (--redis). One app's own console is at its admin API's /console/ (the console option).",
    );
  }
  const url = values.redis ?? io.env.REDIS_URL;
  if (url === undefined) usage('console needs the shared store: --redis URL (or REDIS_URL).');
  const port = values.port === undefined ? 9181 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    usage('--port must be a port number (0 to 65535).');
  const host = values.host ?? '127.0.0.1';
  const hostIp = parseIp(host);
  const loopback =
    host === 'localhost' ||
    (hostIp !== undefined && (hostIp.family === 4 ? hostIp.value >>> 24 === 127 : host === '::1'));
  const remoteText = values['allow-remote'];
  const allowRemote =
    remoteText === undefined
      ? false
      : remoteText === 'any'
        ? true
        : remoteText
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean);
  if (!loopback && allowRemote === false) {
    usage(
      `--host ${host} listens beyond loopback: say who may connect with --allow-remote CIDR[,CIDR...] (or any).`,
    );
  }
  let token = values.token ?? io.env.JAILKEEPER_TOKEN;
  const generated = token === undefined || token === '';
  if (generated) token = randomBytes(24).toString('base64url');
  if ((token as string).length < 16) usage('--token (or JAILKEEPER_TOKEN) must be at least 16 characters.');
  const facts = await configFacts(values);
  const events = fleetEvents();
  const redis = await RedisBackend.open(url, values.prefix ?? 'jk:', {
    jails: facts.jails,
    ignoreIp: facts.ignoreIp,
    ipv6Subnet: facts.ipv6Subnet,
    onBan: events.onBan,
    onUnban: events.onUnban,
  });
  const line = (_obj: object, message?: string) => io.err(`${message ?? ''}\n`);
  let server: ReturnType<typeof createConsoleServer>;
  try {
    server = createConsoleServer(fleetBackend(redis, events, facts.resolved), {
      token: token as string,
      allowRemote,
      logger: { info: line, warn: line, error: line },
    });
  } catch (error) {
    await redis.close();
    throw error;
  }
  const http = createServer(server.node);
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => resolve());
    });
  } catch (error) {
    server.close();
    await redis.close();
    throw new CliError(
      EXIT.usage,
      `Cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code}); choose another --port or --host.`,
    );
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  io.err(
    `jailkeeper console for ${redis.where}: http://${shown}:${(http.address() as AddressInfo).port}/console/\n`,
  );
  if (generated) {
    io.err(
      `Sign in with this token, made for this run (set JAILKEEPER_TOKEN or --token to choose one): ${token}\n`,
    );
  }
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  server.close();
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  await redis.close();
}

async function openBackend(values: Values, io: Io): Promise<Backend> {
  const url = values.url;
  const redis = values.redis ?? (url === undefined ? io.env.REDIS_URL : undefined);
  if (url !== undefined && values.redis !== undefined) usage('Give --redis or --url, not both.');
  if (url !== undefined) {
    const token = values.token ?? io.env.JAILKEEPER_TOKEN;
    if (token === undefined || token === '')
      usage('--url needs the admin token: --token or JAILKEEPER_TOKEN.');
    return new HttpBackend(url, token);
  }
  if (redis === undefined)
    usage("Say where the bans are: --redis URL (or REDIS_URL), or --url of the app's admin API.");
  const prefix = values.prefix ?? 'jk:';
  const { jails, ignoreIp, ipv6Subnet } = await configFacts(values);
  return RedisBackend.open(redis, prefix, { jails, ignoreIp, ipv6Subnet });
}

function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

function runHook(command: string, io: Io): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => {
      if (code !== 0) io.err(`jailkeeper: --exec "${command}" exited with ${code}\n`);
      resolve();
    });
    child.on('error', (error) => {
      io.err(`jailkeeper: --exec "${command}" failed: ${error.message}\n`);
      resolve();
    });
  });
}

async function exportCommand(backend: Backend, values: Values, io: Io, signal: AbortSignal): Promise<void> {
  const format = values.format as ExportFormat | undefined;
  if (format === undefined || !EXPORT_FORMATS.includes(format)) {
    usage(`export needs --format, one of ${EXPORT_FORMATS.join(', ')}.`);
  }
  if (values.watch && values.out === undefined) usage('export --watch needs --out FILE.');
  const intervalMs = values.interval === undefined ? 10_000 : parseDuration(values.interval);
  if (intervalMs === undefined || intervalMs < 100)
    usage('--interval must be a duration of at least 100ms, such as 10s.');
  let last: string | undefined;
  const once = async () => {
    const text = await backend.exportText(format, { name: values.name, jail: values.jail });
    if (values.out === undefined) {
      io.out(text);
      return;
    }
    if (text === last) return;
    last = text;
    await writeAtomic(values.out, text);
    io.err(`jailkeeper: wrote ${values.out} (${format})\n`);
    if (values.exec !== undefined) await runHook(values.exec, io);
  };
  await once();
  if (!values.watch) return;
  // Re-exported on every ban event (Redis) and on a timer (expiries, the admin API, missed events).
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running
        .then(once)
        .catch((error: Error) => io.err(`jailkeeper: export failed: ${error.message}\n`));
    }, 200);
  };
  const stopWatch = backend.watch ? await backend.watch(schedule) : () => {};
  const tick = setInterval(schedule, intervalMs);
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  clearInterval(tick);
  clearTimeout(timer);
  stopWatch();
  await running;
}

async function replayCommand(file: string, values: Values, io: Io): Promise<void> {
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

async function importCommand(path: string, values: Values, io: Io): Promise<number> {
  let read: Fail2banConfigFiles;
  try {
    read = await readFail2banConfig(path, values.filters);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      usage(`No fail2ban configuration at ${path} (a directory such as /etc/fail2ban, or a jail file).`);
    throw error;
  }
  if (values.filters !== undefined && Object.keys(read.filters).length === 0)
    usage(`--filters ${values.filters} holds no filter (fail2ban's filter.d, with .conf files).`);
  const result = importFail2ban(read.files, read.filters);
  if (values.json) {
    printJson(io, { ...result, read: read.files.map((f) => f.name), filters: read.filtersDir ?? null });
    if (result.ok && values.out !== undefined)
      await writeAtomic(values.out, `${JSON.stringify(result.config, null, 2)}\n`);
    return result.ok ? EXIT.ok : EXIT.problems;
  }
  io.err(
    `Read ${read.files.map((f) => f.name).join(', ')}${read.filtersDir === undefined ? ' (no filter.d: the stock filters are known without it)' : `; filters from ${read.filtersDir}`}.\n`,
  );
  const listed =
    result.notes.length === 0
      ? 'Everything was translated.'
      : `Not translated, or translated with a change (${result.notes.length}):\n${result.notes.map((n) => `- ${n}`).join('\n')}`;
  if (!result.ok) {
    io.err(`${listed}\nNothing was written: no jail could be translated.\n`);
    return EXIT.problems;
  }
  const json = `${JSON.stringify(result.config, null, 2)}\n`;
  if (values.out !== undefined) await writeAtomic(values.out, json);
  else io.out(json);
  const problems = checkConfig(result.config as Record<string, unknown>);
  io.err(`${listed}\n`);
  if (problems.length > 0)
    io.err(`The result needs editing: ${problems.map((p) => `${p.code} ${p.option}`).join(', ')}\n`);
  if (values.out !== undefined)
    io.err(`Wrote ${values.out}; check it with: jailkeeper check-config ${values.out}\n`);
  return problems.length > 0 ? EXIT.problems : EXIT.ok;
}

async function run(argv: string[], io: Io, signal: AbortSignal): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.out(`${USAGE}\n`);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const arity = (min: number, max: number, shape: string) => {
    if (args.length < min || args.length > max) usage(`Usage: jailkeeper ${command} ${shape}`);
  };

  switch (command) {
    case 'check-config': {
      arity(1, 1, '<file>');
      const file = args[0] as string;
      let problems: Array<{ code: string; option: string; message: string }>;
      try {
        problems = checkConfig(await loadConfig(file));
      } catch (error) {
        if (error instanceof CliError && error.exitCode === EXIT.problems) {
          problems = [{ code: error.code ?? 'JK_ERR_INVALID_OPTION', option: '', message: error.message }];
        } else throw error;
      }
      if (values.json) printJson(io, { ok: problems.length === 0, problems });
      else if (problems.length === 0) io.out(`OK: ${file} is a valid jailkeeper configuration.\n`);
      else
        io.out(
          `${problems.map((p) => `${p.code} ${p.option || '(file)'}: ${p.message}`).join('\n')}\n${problems.length} problem(s) in ${file}.\n`,
        );
      return problems.length === 0 ? EXIT.ok : EXIT.problems;
    }
    case 'replay':
      arity(1, 1, '<access.log> --config <file>');
      await replayCommand(args[0] as string, values, io);
      return EXIT.ok;
    case 'import-fail2ban':
      arity(1, 1, '<dir|jail.local> [--filters DIR] [--out FILE]');
      return importCommand(args[0] as string, values, io);
    case 'console':
      arity(0, 0, '[--port 9181] [--host 127.0.0.1] [--allow-remote CIDR,...|any] [--token T]');
      await consoleCommand(values, io, signal);
      return EXIT.ok;
    case 'status':
    case 'bans':
    case 'ban':
    case 'unban':
    case 'ignore':
    case 'export':
      break;
    default:
      usage(`Unknown command ${JSON.stringify(command)}.`);
  }

  // Check the arguments before connecting: a typo should not wait for a network timeout.
  if (command === 'status') arity(0, 1, '[jail]');
  if (command === 'bans' || command === 'export') arity(0, 0, '');
  if (command === 'ban') {
    arity(1, 1, '<ip> [--jail J] [--for 1h] [--reason text]');
    if (values.for !== undefined) {
      try {
        toBanTimeMs('--for', values.for);
      } catch {
        usage(
          `--for must be a duration such as 90s, 1h, 1d12h or permanent; received ${JSON.stringify(values.for)}.`,
        );
      }
    }
  }
  if (command === 'unban') {
    if (values.all) arity(0, 0, '--all [--jail J]');
    else arity(1, 1, '<ip> [--jail J]  (or --all)');
  }
  if (command === 'ignore') {
    const [sub] = args;
    if (sub === 'list') arity(1, 1, 'list');
    else if (sub === 'add' || sub === 'remove') arity(2, 2, `${sub} <ip|cidr>`);
    else usage('Usage: jailkeeper ignore add|remove <ip|cidr> | ignore list');
  }

  const backend = await openBackend(values, io);
  try {
    switch (command) {
      case 'status': {
        const status = await backend.status();
        const jail = args[0];
        if (jail !== undefined && status.jails[jail] === undefined) {
          throw new CliError(
            EXIT.rejected,
            `There is no jail ${JSON.stringify(jail)}; the jails are ${Object.keys(status.jails).join(', ')}.`,
            'JK_ERR_UNKNOWN_JAIL',
          );
        }
        if (values.json) printJson(io, jail === undefined ? status : { jail, ...status.jails[jail] });
        else io.out(`${statusText(status, jail)}\n`);
        return EXIT.ok;
      }
      case 'bans': {
        const bans = await backend.bans(values.jail);
        if (values.json) printJson(io, bans);
        else io.out(`${bansTable(bans)}\n`);
        return EXIT.ok;
      }
      case 'ban': {
        const ban = await backend.ban(args[0] as string, {
          jail: values.jail,
          duration: values.for,
          reason: values.reason,
        });
        if (values.json) printJson(io, ban);
        else
          io.out(
            `Banned ${ban.client} in ${ban.jail} ${ban.timeLeftMs === null ? 'permanently' : `for ${formatDuration(ban.timeLeftMs)}`}.\n`,
          );
        return EXIT.ok;
      }
      case 'unban': {
        const lifted = values.all
          ? await backend.unbanAll(values.jail)
          : await backend.unban(args[0] as string, values.jail);
        if (values.json) printJson(io, lifted);
        else if (lifted.length === 0)
          io.out(
            values.all
              ? 'There were no bans to lift.\n'
              : `${args[0]} was not banned${values.jail ? ` in ${values.jail}` : ''}.\n`,
          );
        else
          io.out(
            `Lifted ${lifted.length} ban(s): ${lifted.map((b) => `${b.client} (${b.jail})`).join(', ')}.\n`,
          );
        return EXIT.ok;
      }
      case 'ignore': {
        const [sub, entry] = args as [string, string | undefined];
        if (sub === 'list') {
          const entries = await backend.ignoreList();
          if (values.json) printJson(io, entries);
          else
            io.out(entries.length === 0 ? 'The runtime ignore list is empty.\n' : `${entries.join('\n')}\n`);
          return EXIT.ok;
        }
        const changed =
          sub === 'add'
            ? await backend.ignoreAdd(entry as string)
            : await backend.ignoreRemove(entry as string);
        if (values.json) printJson(io, changed);
        else
          io.out(
            changed.length === 0
              ? `Nothing changed: ${entry} was ${sub === 'add' ? 'already' : 'not'} in the list.\n`
              : `${sub === 'add' ? 'Added' : 'Removed'} ${changed.join(', ')}.\n`,
          );
        return EXIT.ok;
      }
      case 'export':
        await exportCommand(backend, values, io, signal);
        return EXIT.ok;
      default:
        return EXIT.usage;
    }
  } finally {
    await backend.close();
  }
}

/**
 * Runs one command line and returns its exit code; errors become a message on stderr and a code.
 * `signal` ends `export --watch`.
 */
export async function main(
  argv: string[],
  io: Io,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  try {
    return await run(argv, io, signal);
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`jailkeeper: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof JailkeeperError) {
      io.err(`jailkeeper: ${(error as JailkeeperError).code}: ${(error as Error).message}\n`);
      return EXIT.rejected;
    }
    io.err(`jailkeeper: unexpected error: ${(error as Error)?.stack ?? error}\n`);
    return 70;
  }
}
