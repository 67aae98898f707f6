import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { type BanEvent, createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { type CrawlerResolver, createManualClock, type ObserveResult } from '@jailkeeper/core/operator';
import { type CombinedEntry, createCombinedParser, type LogEntry, parseJsonLine } from './log-line.js';
import {
  type ClientProfile,
  type ClientStory,
  type EvidenceLine,
  looksLegitimate,
  outcomeWords,
  ReplayWitness,
} from './replay-profile.js';

/** One ban replay found. */
export interface ReplayBan {
  jail: string;
  client: string;
  ip: string | null;
  atMs: number;
  /** null for a permanent ban. */
  untilMs: number | null;
  banCount: number;
  /** The line that made it. */
  line: number;
  /** The failures counted in the window that ended in the ban (the last 20). */
  evidence: EvidenceLine[];
  /** The client over the whole log (requests refused after the ban included). */
  profile: ClientProfile | null;
  /** Many successes and few distinct failures: the shape of a reader, not of a scanner. Worth a look. */
  looksLegitimate: boolean;
}

/** One jail's part of a replay: what it counted, spared and banned. */
export interface ReplayJail {
  counted: number;
  exempt: number;
  /** Exempt responses by path (the most frequent 20). */
  exemptPaths: Record<string, number>;
  ignored: number;
  pardoned: number;
  /** Failures not counted: the client already failed on that path (`distinct`). */
  repeated: number;
  /** Failures not counted: the path was a broken link many networks got (`sharedPaths`). */
  shared: number;
  bans: number;
}

/** What `replay()` found in an access log: what it read, per jail what counted, each ban with its evidence, the broken links. */
export interface ReplayReport {
  file: string;
  format: 'combined' | 'json';
  lines: number;
  /** Access-log lines read, with a client address. */
  parsed: number;
  /** Lines that are not access-log lines (an error log, another format). */
  unparseable: number;
  /** The first unparseable lines, with their numbers. */
  unparseableSamples: Array<{ line: number; text: string }>;
  /** Access-log lines whose client field is not an address (a host name): counted nowhere. */
  unattributed: number;
  /** The first unattributed lines, with their numbers. */
  unattributedSamples: Array<{ line: number; text: string }>;
  /** Lines whose time had no zone: read as local time, in `timeZone`. */
  localTimes: number;
  /** The zone local times were read in. */
  timeZone: string;
  seconds: number;
  linesPerSecond: number;
  fromMs: number | null;
  toMs: number | null;
  /** Requests that arrived while their client was banned: jailkeeper would have refused them. */
  refused: number;
  jails: Record<string, ReplayJail>;
  bans: ReplayBan[];
  /** Paths taken for the site's broken links during the replay (`sharedPaths`), when they became so. */
  brokenLinks: Array<{ jail: string; path: string; networks: number; atMs: number; line: number }>;
  /** With `explain`: that client's story. */
  explain?: ClientStory;
  /** Replay runs every jail live (dryRun off), to show what going live would do. */
  note: string;
}

/** Options of `replay()`: the log's format, progress, `--explain`, and DNS for `verifiedCrawlers`. */
export interface ReplayOptions {
  format?: 'combined' | 'json' | 'auto';
  /** The DNS `verifiedCrawlers` asks (tests inject one). @default the system's */
  crawlerResolver?: CrawlerResolver;
  /** Called with the bytes read so far and the file's size. */
  onProgress?: (read: number, size: number) => void;
  /** An address whose every line is told (`--explain`). */
  explain?: string;
}

/**
 * Replay's logger: bans and broken links are in the report, so only other warnings are passed on
 * (as process warnings, on stderr).
 */
const REPLAY_LOGGER = {
  info() {},
  error() {},
  warn(obj: object, msg?: string) {
    const code = (obj as { code?: string }).code;
    if (code !== 'JK_WRN_BROKEN_LINK')
      process.emitWarning(msg ?? String(code), code === undefined ? {} : { code });
  },
};

/** The options replay runs with: the file's jails and identity settings, live, in memory. */
function replayOptions(
  config: Record<string, unknown>,
  clock: ReturnType<typeof createManualClock>,
  crawlerResolver: CrawlerResolver | undefined,
): JailkeeperOptions {
  const {
    store: _store,
    persist: _persist,
    logger: _logger,
    clock: _clock,
    dryRun: _dryRun,
    ...rest
  } = config;
  const jails: Record<string, unknown> = {};
  for (const [name, jail] of Object.entries(
    (config.jails ?? {}) as Record<string, Record<string, unknown>>,
  )) {
    const { dryRun: _jailDryRun, ...live } = jail ?? {};
    jails[name] = live;
  }
  const recidive = config.recidive;
  const crawlers = config.verifiedCrawlers;
  return {
    ...(rest as object),
    ...(crawlerResolver !== undefined && crawlers !== undefined && crawlers !== false
      ? {
          verifiedCrawlers: { ...(crawlers === true ? {} : (crawlers as object)), resolver: crawlerResolver },
        }
      : {}),
    jails,
    ...(typeof recidive === 'object' && recidive !== null
      ? { recidive: { ...(recidive as object), dryRun: false } }
      : {}),
    clock,
    logger: REPLAY_LOGGER,
    sweepInterval: '1h',
    closeConnectionsOnBan: false,
  } as JailkeeperOptions;
}

/**
 * Runs an access log's lines through the jails, in the log's own time, like fail2ban-regex: what
 * counted, what was exempt or ignored, who would have been banned when, and what would then have
 * been refused.
 */
export async function replay(
  file: string,
  config: Record<string, unknown>,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const clock = createManualClock(0);
  const keeper = createJailkeeper(replayOptions(config, clock, options.crawlerResolver));
  const jailNames = keeper.options.jails.map((j) => j.name);
  const jails: Record<string, ReplayJail> = {};
  for (const name of jailNames)
    jails[name] = {
      counted: 0,
      exempt: 0,
      exemptPaths: {},
      ignored: 0,
      pardoned: 0,
      repeated: 0,
      shared: 0,
      bans: 0,
    };
  const explained = options.explain === undefined ? undefined : keeper.identify(options.explain);
  const witness = new ReplayWitness(
    options.explain === undefined
      ? undefined
      : { address: options.explain, client: explained?.key ?? options.explain },
  );
  const report: ReplayReport = {
    file,
    format: 'combined',
    lines: 0,
    parsed: 0,
    unparseable: 0,
    unparseableSamples: [],
    unattributed: 0,
    unattributedSamples: [],
    localTimes: 0,
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC',
    seconds: 0,
    linesPerSecond: 0,
    fromMs: null,
    toMs: null,
    refused: 0,
    jails,
    bans: [],
    brokenLinks: [],
    note: "Replay runs every jail live (dryRun off) on an in-memory store, with the log's own clock.",
  };
  let lineNo = 0;
  let lastIp: string | null = null;
  /** The bans of the line being observed, by jail and client, for their evidence. */
  const fresh = new Map<string, ReplayBan>();
  keeper.on('ban', (ban: BanEvent) => {
    const made: ReplayBan = {
      jail: ban.jail,
      client: ban.client,
      ip: ban.ip ?? lastIp,
      atMs: ban.startMs,
      untilMs: Number.isFinite(ban.endMs) ? ban.endMs : null,
      banCount: ban.banCount,
      line: lineNo,
      evidence: [],
      profile: null,
      looksLegitimate: false,
    };
    report.bans.push(made);
    fresh.set(`${ban.jail}\u0000${ban.client}`, made);
    const j = jails[ban.jail];
    if (j) j.bans++;
  });
  keeper.on('brokenLink', (link) => {
    report.brokenLinks.push({
      jail: link.jail,
      path: link.path,
      networks: link.networks,
      atMs: link.sinceMs,
      line: lineNo,
    });
  });

  const { size } = await stat(file);
  let parse: ((line: string) => LogEntry | undefined) | undefined =
    options.format === 'json'
      ? parseJsonLine
      : options.format === 'combined'
        ? createCombinedParser()
        : undefined;
  const started = process.hrtime.bigint();
  const exemptCounts = new Map<string, Map<string, number>>();

  const tally = (result: ObserveResult, path: string): void => {
    for (const outcome of result.jails) {
      const j = jails[outcome.jail];
      if (j === undefined) continue;
      switch (outcome.action) {
        case 'repeated':
          j.repeated++;
          break;
        case 'shared':
          j.shared++;
          break;
        case 'counted':
        case 'banned':
        case 'alreadyBanned':
          j.counted++;
          break;
        case 'exempt': {
          j.exempt++;
          let paths = exemptCounts.get(outcome.jail);
          if (paths === undefined) {
            paths = new Map();
            exemptCounts.set(outcome.jail, paths);
          }
          if (paths.size < 10_000 || paths.has(path)) paths.set(path, (paths.get(path) ?? 0) + 1);
          break;
        }
        case 'ignored':
          j.ignored++;
          break;
        case 'pardoned':
          j.pardoned++;
          break;
        default:
          break;
      }
    }
  };

  // Synchronous for the lines that count nothing (most of a log): only a counted line awaits the store.
  const handle = (line: string): Promise<void> | undefined => {
    lineNo++;
    if (line.length === 0) return undefined;
    report.lines++;
    if (parse === undefined) {
      report.format = line.trimStart().startsWith('{') ? 'json' : 'combined';
      parse = report.format === 'json' ? parseJsonLine : createCombinedParser();
    }
    const entry = parse(line);
    if (entry === undefined) {
      report.unparseable++;
      if (report.unparseableSamples.length < 5)
        report.unparseableSamples.push({ line: lineNo, text: line.slice(0, 200) });
      return undefined;
    }
    // Parsed once for both calls: each would otherwise parse the address text again.
    const client = keeper.identify(entry.ip);
    if (client === undefined) {
      report.unattributed++;
      if (report.unattributedSamples.length < 5)
        report.unattributedSamples.push({ line: lineNo, text: line.slice(0, 200) });
      return undefined;
    }
    report.parsed++;
    if ((entry as CombinedEntry).localTime === true) report.localTimes++;
    if (report.fromMs === null) report.fromMs = entry.timeMs;
    report.toMs = entry.timeMs;
    if (entry.timeMs > clock.now()) clock.set(entry.timeMs);
    witness.request(client.key, entry.timeMs, entry.status, entry.path, entry.userAgent);
    const verdict = keeper.check(client, { method: entry.method, path: entry.path });
    if (verdict.banned) {
      report.refused++;
      witness.tell(client.key, lineNo, line, `refused (banned in ${verdict.jail})`);
      return undefined;
    }
    if (!keeper.watchesStatus(entry.status)) {
      witness.tell(client.key, lineNo, line, 'no jail watches this status');
      return undefined;
    }
    lastIp = entry.ip;
    const path = entry.path;
    const at = lineNo;
    return keeper
      .observe({
        client,
        method: entry.method,
        path,
        ...(entry.query === undefined ? {} : { query: entry.query }),
        status: entry.status,
        userAgent: entry.userAgent,
      })
      .then((result) => {
        tally(result, path);
        witness.observed(client.key, at, entry.timeMs, line, result);
        witness.tell(client.key, at, line, outcomeWords(result));
        if (fresh.size > 0) {
          for (const [key, ban] of fresh) {
            const findTimeMs = keeper.options.jailsByName.get(ban.jail)?.findTimeMs ?? 0;
            ban.evidence = witness.takeEvidence(ban.jail, ban.client, ban.atMs - findTimeMs);
            fresh.delete(key);
          }
        }
      });
  };

  const decoder = new StringDecoder('utf8');
  let rest = '';
  let read = 0;
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    read += chunk.length;
    const text = rest + decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      const pending = handle(text.slice(start, end));
      if (pending !== undefined) await pending;
      start = nl + 1;
    }
    rest = text.slice(start);
    options.onProgress?.(read, size);
  }
  rest += decoder.end();
  if (rest.length > 0) await handle(rest.replace(/\r$/, ''));

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  report.seconds = Math.round(seconds * 1000) / 1000;
  report.linesPerSecond = Math.round(report.lines / Math.max(seconds, 1e-9));
  for (const ban of report.bans) {
    ban.profile = witness.profile(ban.client);
    ban.looksLegitimate = ban.profile !== null && looksLegitimate(ban.profile);
  }
  if (witness.story !== undefined)
    report.explain = { ...witness.story, profile: witness.profile(witness.story.client) };
  for (const [jail, paths] of exemptCounts) {
    const top = [...paths].sort((a, b) => b[1] - a[1]).slice(0, 20);
    (jails[jail] as ReplayJail).exemptPaths = Object.fromEntries(top);
  }
  await keeper.close();
  return report;
}
