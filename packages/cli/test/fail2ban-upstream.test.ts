/**
 * Issue 21: annotated fail2ban test logs through `import-fail2ban` and `replay`.
 *
 * - fail2ban's own logs of its nginx-* and apache-* filters, from Debian's fail2ban package (1.0.2
 *   on Debian 12), which .ci/run unpacks into .tmp/fail2ban-deb (see fail2ban-data.ts); they are
 *   GPL-2.0 and not in this repository. Imported with that package's jail.conf and filter.d.
 * - our own annotated logs (fixtures/fail2ban-logs, MIT) for the filters of the README's table
 *   that 1.0.2 has no log for. Imported from a jail.local alone (jailkeeper's built-in knowledge
 *   of the stock filters), so they always run, and also with Debian's files when they are there.
 *
 * Each line annotated as a failure must be counted, each annotated non-match must not, or the line
 * is listed below with what jailkeeper does instead and why. Error-log lines (the web server's own
 * messages, which an app never sees) are not applicable as a class: replay must report them as
 * unparseable and never count them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CrawlerResolver } from '@jailkeeper/core/operator';
import { type ImportResult, importFail2ban } from '../src/fail2ban.js';
import { readFilters } from '../src/fail2ban-files.js';
import { createCombinedParser } from '../src/log-line.js';
import { type ReplayReport, replay } from '../src/replay.js';
import { FAIL2BAN_CONF, FAIL2BAN_LOGS, FAIL2BAN_SKIP, HAS_FAIL2BAN } from './fail2ban-data.js';

const OWN_LOGS = fileURLToPath(new URL('./fixtures/fail2ban-logs/', import.meta.url));
const README = fileURLToPath(new URL('../README.md', import.meta.url));

/**
 * Access-log lines where jailkeeper does not do what fail2ban's annotation says, with what it does
 * instead and why. Keyed by log and a piece of the line; each must still disagree, or it goes.
 */
const LISTED: ReadonlyArray<{ log: string; line: string; jailkeeper: 'counts' | 'ignores'; reason: string }> =
  [
    {
      log: 'apache-pass',
      line: '"GET /knocking/ HTTP/1.1" 200',
      jailkeeper: 'ignores',
      reason:
        'apache-pass is a port knock: a 200 on a secret URL opens the firewall. It is a success, not a failure, so it stays in fail2ban (the import says so and makes no jail).',
    },
    {
      log: 'nginx-env',
      line: '"GET /.env?reload=1 HTTP/1.1"',
      jailkeeper: 'counts',
      reason:
        'jailkeeper matches the path without its query string: this is a request for /.env, which fail2ban\'s regex (".env" then a space) misses.',
    },
    {
      log: 'nginx-wplogin',
      line: '"POST /wp-login.php HTTP/2.0" 500',
      jailkeeper: 'counts',
      reason:
        'the filter names HTTP/1.1; the same failed sign-in over HTTP/2 reaches the app as the same request, and jailkeeper counts requests, not protocol versions.',
    },
    {
      log: 'nginx-noscript',
      line: '"HEAD /shell.pl HTTP/1.1" 404',
      jailkeeper: 'counts',
      reason:
        'the filter wants GET; an app answers HEAD with its GET route, so the import counts HEAD with GET (its note says so).',
    },
  ];

/** A DNS that knows no name: every claimed Googlebot is an impostor, as in fail2ban's filter test. */
const NO_DNS: CrawlerResolver = {
  reverse: async () => {
    throw Object.assign(new Error('no PTR'), { code: 'ENOTFOUND' });
  },
  lookup: async () => [],
};

/** A DNS where 66.249.66.1 is Google's crawler, forward-confirmed. */
const GOOGLE_DNS: CrawlerResolver = {
  reverse: async (ip) => {
    if (ip === '66.249.66.1') return ['crawl-66-249-66-1.googlebot.com'];
    throw Object.assign(new Error('no PTR'), { code: 'ENOTFOUND' });
  },
  lookup: async (name) => (name === 'crawl-66-249-66-1.googlebot.com' ? ['66.249.66.1'] : []),
};

interface Annotated {
  log: string;
  number: number;
  text: string;
  match: boolean;
}

/** The lines of a fail2ban test log with the `# failJSON:` annotation above each. */
function annotated(log: string, text: string): Annotated[] {
  const out: Annotated[] = [];
  let pending: { match: boolean } | undefined;
  text.split('\n').forEach((line, i) => {
    const json = /^#\s*failJSON:\s*(\{.*\})\s*$/.exec(line);
    if (json) {
      pending = JSON.parse(json[1] as string) as { match: boolean };
      return;
    }
    if (line.startsWith('#') || line.trim() === '') return;
    assert.ok(pending, `${log}:${i + 1} has an annotation`);
    out.push({ log, number: i + 1, text: line, match: pending.match });
    pending = undefined;
  });
  return out;
}

function listed(line: Annotated) {
  return LISTED.find((e) => e.log === line.log && line.text.includes(e.line));
}

/** Where a set of annotated logs comes from, and the fail2ban configuration they are imported with. */
interface Source {
  what: string;
  dir: string;
  logs: string[];
  /** Debian's jail.conf, when there. */
  jailConf: string | undefined;
  /** Debian's filter.d, when there; else none (jailkeeper's built-in knowledge). */
  filters: Record<string, string>;
}

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jk-f2b-logs-'));
  dirs.push(dir);
  return dir;
}

/** What the import makes of the source's jail.conf plus a jail.local enabling the filter. */
function imported(source: Source, log: string): ImportResult {
  const local = [`[${log}]`, 'enabled = true', 'maxretry = 1000'];
  if (log === 'apache-fakegooglebot')
    local.push('ignorecommand = %(fail2ban_confpath)s/filter.d/ignorecommands/apache-fakegooglebot <ip>');
  const files = [{ name: 'jail.local', text: `${local.join('\n')}\n` }];
  if (source.jailConf !== undefined) files.unshift({ name: 'jail.conf', text: source.jailConf });
  return importFail2ban(files, source.filters);
}

let fileNo = 0;
async function replayText(
  dir: string,
  text: string,
  config: ImportResult['config'],
  resolver: CrawlerResolver,
) {
  const file = join(dir, `${++fileNo}.log`);
  await writeFile(file, `${text}\n`);
  return replay(file, config as Record<string, unknown>, { crawlerResolver: resolver });
}

function counted(report: ReplayReport): number {
  return Object.values(report.jails).reduce((n, j) => n + j.counted, 0);
}

interface Figures {
  agreed: number;
  listed: number;
  errorLog: number;
}

/** Every annotated line of every log of the source, one by one, checked against its annotation. */
async function checkLines(t: TestContext, source: Source): Promise<Figures> {
  const dir = await scratch();
  const total: Figures = { agreed: 0, listed: 0, errorLog: 0 };
  const used = new Set<(typeof LISTED)[number]>();
  for (const log of source.logs) {
    const lines = annotated(log, await readFile(join(source.dir, log), 'utf8'));
    assert.ok(lines.length > 0, `${log} has annotated lines`);
    const result = imported(source, log);
    const mine: Figures = { agreed: 0, listed: 0, errorLog: 0 };
    for (const line of lines) {
      const where = `${log}:${line.number} ${line.text.slice(0, 90)}`;
      // No jail: the filter stays in fail2ban; replay still tells an access-log line from another.
      const report = await replayText(
        dir,
        line.text,
        result.ok ? result.config : { jails: { probe: { statuses: [400] } } },
        NO_DNS,
      );
      const n = result.ok ? counted(report) : 0;
      if (report.parsed === 0) {
        // The web server's own message (error log, syslog, journal): the app never sees it.
        assert.equal(report.unparseable, 1, `${where}: reported as unparseable`);
        assert.equal(counted(report), 0, `${where}: never counted`);
        mine.errorLog++;
        continue;
      }
      assert.equal(report.unattributed, 0, `${where}: every access-log line names its client`);
      const exception = listed(line);
      if (exception) {
        assert.equal(
          n > 0,
          exception.jailkeeper === 'counts',
          `${where}: jailkeeper ${exception.jailkeeper} it`,
        );
        assert.notEqual(n > 0, line.match, `${where}: listed, so it must still disagree with fail2ban`);
        used.add(exception);
        t.diagnostic(
          `listed ${log}:${line.number}: jailkeeper ${exception.jailkeeper} it: ${exception.reason}`,
        );
        mine.listed++;
        continue;
      }
      assert.ok(
        result.ok,
        `${where}: the import made no jail (${result.notes.join(' ')}); list the line with the reason`,
      );
      assert.equal(
        n > 0,
        line.match,
        `${where}: fail2ban says ${line.match ? 'a failure' : 'no match'}; jailkeeper counted ${n} (${JSON.stringify(result.config.jails)})`,
      );
      mine.agreed++;
    }
    t.diagnostic(
      `${log}: ${mine.agreed} access-log lines agree, ${mine.listed} listed, ${mine.errorLog} error-log lines`,
    );
    total.agreed += mine.agreed;
    total.listed += mine.listed;
    total.errorLog += mine.errorLog;
  }
  for (const e of LISTED)
    if (source.logs.includes(e.log))
      assert.ok(used.has(e), `${e.log}: the listed line ${e.line} is still met`);
  t.diagnostic(
    `${source.what}: ${total.agreed} access-log lines agree with fail2ban's annotations, ${total.listed} listed, ${total.errorLog} error-log lines reported unparseable`,
  );
  return total;
}

/** Each whole log through replay: the same counts as line by line, every line accounted for. */
async function checkWholeLogs(source: Source) {
  for (const log of source.logs) {
    const result = imported(source, log);
    if (!result.ok) continue;
    const parse = createCombinedParser();
    const lines = annotated(log, await readFile(join(source.dir, log), 'utf8'));
    const accessLines = lines.filter((l) => parse(l.text) !== undefined);
    const expected = accessLines.filter((l) => {
      const exception = listed(l);
      return exception ? exception.jailkeeper === 'counts' : l.match;
    });
    const report = await replay(join(source.dir, log), result.config as Record<string, unknown>, {
      crawlerResolver: NO_DNS,
    });
    assert.equal(report.unattributed, 0, log);
    assert.equal(report.parsed, accessLines.length, log);
    // Comments are not access-log lines either: they are reported with the error-log lines.
    assert.ok(report.unparseable >= lines.length - accessLines.length, `${log}: error-log lines reported`);
    assert.equal(report.parsed + report.unparseable, report.lines, `${log}: every line is accounted for`);
    assert.equal(
      counted(report),
      expected.length,
      `${log}: counted ${counted(report)}, expected ${expected.length}`,
    );
  }
}

/** What each client of a log comes to under the given DNS, with verifiedCrawlers on. */
async function crawlerOutcome(source: Source, resolver: CrawlerResolver): Promise<Record<string, number>> {
  const log = 'apache-fakegooglebot';
  const result = imported(source, log);
  assert.deepEqual(result.config.verifiedCrawlers, { jails: [log] });
  const dir = await scratch();
  const outcome: Record<string, number> = {};
  for (const line of annotated(log, await readFile(join(source.dir, log), 'utf8'))) {
    const report = await replayText(dir, line.text, result.config, resolver);
    outcome[line.text.split(' ')[0] as string] = counted(report);
  }
  return outcome;
}

/** The filters named in the first column of the README's table of stock filters. */
async function readmeFilters(): Promise<string[]> {
  const text = await readFile(README, 'utf8');
  const table = text.slice(text.indexOf('| fail2ban filter'));
  const names: string[] = [];
  for (const row of table.split('\n')) {
    if (!row.startsWith('|')) break;
    const cell = row.split('|')[1] ?? '';
    for (const m of cell.matchAll(/`([a-z0-9-]+)`/g)) names.push(m[1] as string);
  }
  return names;
}

const ownLogs = async () => (await readdir(OWN_LOGS)).filter((f) => !f.endsWith('.md')).sort();

describe("fail2ban's own annotated nginx-* and apache-* test logs (Debian's package)", {
  skip: FAIL2BAN_SKIP,
}, () => {
  let source: Source;
  before(async () => {
    if (!HAS_FAIL2BAN) return;
    source = {
      what: "fail2ban's own logs",
      dir: FAIL2BAN_LOGS,
      logs: (await readdir(FAIL2BAN_LOGS)).filter((f) => /^(nginx|apache)-/.test(f)).sort(),
      jailConf: await readFile(join(FAIL2BAN_CONF, 'jail.conf'), 'utf8'),
      filters: await readFilters(join(FAIL2BAN_CONF, 'filter.d')),
    };
  });

  it('counts each annotated failure, not each annotated non-match; the rest is listed with its reason', async (t) => {
    const figures = await checkLines(t, source);
    assert.ok(figures.agreed >= 20, `${figures.agreed} access-log lines checked`);
    assert.ok(figures.errorLog >= 100, `${figures.errorLog} error-log lines checked`);
  });

  it('replays each whole log file: the same counts; comments and error-log lines reported as unparseable', async () => {
    await checkWholeLogs(source);
  });

  it('apache-fakegooglebot with its ignorecommand: the Googlebot that DNS confirms is spared, an unconfirmed one counted', async () => {
    assert.deepEqual(await crawlerOutcome(source, GOOGLE_DNS), { '66.249.66.1': 0, '93.184.216.34': 0 });
    assert.deepEqual(await crawlerOutcome(source, NO_DNS), { '66.249.66.1': 1, '93.184.216.34': 0 });
  });

  it('reads the zone-less times of the logs as local time, and says how many', async () => {
    const result = imported(source, 'apache-fakegooglebot');
    const report = await replay(
      join(FAIL2BAN_LOGS, 'apache-fakegooglebot'),
      result.config as Record<string, unknown>,
      {
        crawlerResolver: NO_DNS,
      },
    );
    assert.equal(report.parsed, 2);
    assert.equal(report.localTimes, report.parsed);
    assert.equal(report.fromMs, new Date(2015, 0, 31, 14, 29, 44).getTime());
  });

  it("every filter of the README's table has an annotated log: fail2ban's, or ours where 1.0.2 has none", async () => {
    const theirs = new Set(source.logs);
    const ours = new Set(await ownLogs());
    const names = await readmeFilters();
    assert.ok(names.length >= 20, `${names.length} filters in the README's table`);
    for (const name of names) assert.ok(theirs.has(name) || ours.has(name), `${name} has an annotated log`);
  });
});

describe('our own annotated logs, for the filters without a log in fail2ban 1.0.2', () => {
  // From a jail.local alone (jailkeeper's built-in knowledge of the stock filters), and, when
  // Debian's files are there, with its jail.conf and filter.d as well.
  const sources: Source[] = [];
  before(async () => {
    const logs = await ownLogs();
    sources.push({
      what: 'our own logs, built-in knowledge',
      dir: OWN_LOGS,
      logs,
      jailConf: undefined,
      filters: {},
    });
    if (HAS_FAIL2BAN)
      sources.push({
        what: "our own logs, with Debian's jail.conf and filter.d",
        dir: OWN_LOGS,
        logs,
        jailConf: await readFile(join(FAIL2BAN_CONF, 'jail.conf'), 'utf8'),
        filters: await readFilters(join(FAIL2BAN_CONF, 'filter.d')),
      });
  });

  it('counts each annotated failure, not each annotated non-match; the rest is listed with its reason', async (t) => {
    for (const source of sources) {
      const figures = await checkLines(t, source);
      assert.ok(figures.agreed >= 30, `${figures.agreed} access-log lines checked`);
    }
  });

  it('replays each whole log file: the same counts; comments and error-log lines reported as unparseable', async () => {
    for (const source of sources) await checkWholeLogs(source);
  });

  it('apache-fakegooglebot with its ignorecommand: the real Googlebot is spared, the fake one counted', async () => {
    for (const source of sources)
      assert.deepEqual(
        await crawlerOutcome(source, GOOGLE_DNS),
        { '66.249.66.1': 0, '203.0.113.99': 1, '203.0.113.98': 0, '198.51.100.23': 0 },
        source.what,
      );
  });
});
