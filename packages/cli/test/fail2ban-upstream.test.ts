/**
 * Issue 21: every line of fail2ban's own annotated test logs for the nginx-* and apache-* filters
 * (fixtures/fail2ban-upstream, GPL-2.0, see its README) goes through `import-fail2ban` (fail2ban's
 * jail.conf and filter.d, plus a jail.local enabling the filter) and `replay`. Each annotated
 * failure must be counted, each annotated non-match must not, or the line is listed below as not
 * applicable with the reason. Error-log lines (the web server's own messages, which an app never
 * sees) are not applicable as a class: replay must report them as unparseable, never count them.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CrawlerResolver } from '@jailkeeper/core';
import { type ImportResult, importFail2ban } from '../src/fail2ban.js';
import { readFilters } from '../src/fail2ban-files.js';
import { createCombinedParser } from '../src/log-line.js';
import { type ReplayReport, replay } from '../src/replay.js';

/**
 * fail2ban's own files (GPL-2.0) are not in this repository: .ci/run extracts Debian's fail2ban
 * package (without installing it) into .tmp/fail2ban-deb, or FAIL2BAN_ROOT names such a tree.
 */
const ROOT =
  process.env.FAIL2BAN_ROOT ?? fileURLToPath(new URL('../../../.tmp/fail2ban-deb/', import.meta.url));
const CONF = join(ROOT, 'etc/fail2ban/');
const LOGS = join(ROOT, 'usr/lib/python3/dist-packages/fail2ban/tests/files/logs/');
const PRESENT = existsSync(LOGS);

/**
 * Access-log lines an app-side jail does not count, with why. Keyed by log and a piece of the line.
 */
const NOT_APPLICABLE: ReadonlyArray<{ log: string; line: string; reason: string }> = [
  {
    log: 'apache-pass',
    line: '"GET /knocking/ HTTP/1.1" 200',
    reason:
      'apache-pass is a port knock: a 200 on a secret URL opens the firewall. It is a success, not a failure, so it stays in fail2ban (the import says so and makes no jail).',
  },
  {
    log: 'apache-zerotolerance',
    line: '"HEAD http://1.1.1.1:80<html><head> HTTP/1.1" 400',
    reason:
      'an absolute-form request target (a proxy probe), not a path: jailkeeper paths start with "/" (the import translates that failregex line into globs under "/", which this target is not).',
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

let dir: string;
let jailConf: string;
let filters: Record<string, string>;
let logs: string[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jk-f2b-upstream-'));
  if (!PRESENT) return;
  jailConf = await readFile(`${CONF}jail.conf`, 'utf8');
  filters = await readFilters(`${CONF}filter.d`);
  logs = (await readdir(LOGS)).filter((f) => /^(nginx|apache)-/.test(f)).sort();
});
after(() => rm(dir, { recursive: true, force: true }));

/** What the import makes of fail2ban's jail.conf plus a jail.local enabling the filter. */
function imported(log: string): ImportResult {
  const local = [`[${log}]`, 'enabled = true', 'maxretry = 1000'];
  if (log === 'apache-fakegooglebot')
    local.push('ignorecommand = %(fail2ban_confpath)s/filter.d/ignorecommands/apache-fakegooglebot <ip>');
  return importFail2ban(
    [
      { name: 'jail.conf', text: jailConf },
      { name: 'jail.local', text: `${local.join('\n')}\n` },
    ],
    filters,
  );
}

let fileNo = 0;
async function replayText(text: string, config: ImportResult['config'], resolver: CrawlerResolver) {
  const file = join(dir, `${++fileNo}.log`);
  await writeFile(file, `${text}\n`);
  return replay(file, config as Record<string, unknown>, { crawlerResolver: resolver });
}

function counted(report: ReplayReport): number {
  return Object.values(report.jails).reduce((n, j) => n + j.counted, 0);
}

const SKIP = PRESENT
  ? false
  : `fail2ban's files are not at ${ROOT}: .ci/run extracts Debian's fail2ban package there (apt-get download fail2ban; dpkg -x)`;

describe("fail2ban's annotated nginx-* and apache-* test logs through import-fail2ban and replay", {
  skip: SKIP,
}, () => {
  it('counts each annotated failure, not each annotated non-match; the rest is listed with its reason', async (t) => {
    const summary: string[] = [];
    const usedExceptions = new Set<(typeof NOT_APPLICABLE)[number]>();
    let agreed = 0;
    let errorLog = 0;
    for (const log of logs) {
      const lines = annotated(log, await readFile(`${LOGS}${log}`, 'utf8'));
      const result = imported(log);
      let logAgreed = 0;
      let logNa = 0;
      let logErrors = 0;
      for (const line of lines) {
        const where = `${log}:${line.number} ${line.text.slice(0, 90)}`;
        const exception = NOT_APPLICABLE.find((e) => e.log === log && line.text.includes(e.line));
        if (!result.ok) {
          // No jail: the filter stays in fail2ban. Its access-log lines must be listed.
          const report = await replayText(line.text, { jails: { probe: { statuses: [400] } } }, NO_DNS);
          if (report.parsed === 1) {
            assert.ok(
              exception,
              `${where}: the import made no jail (${result.notes.join(' ')}); list the line`,
            );
            usedExceptions.add(exception);
            logNa++;
          } else {
            assert.equal(report.unparseable, 1, `${where}: an error-log line is reported, not dropped`);
            logErrors++;
          }
          continue;
        }
        const report = await replayText(line.text, result.config, NO_DNS);
        assert.equal(report.unattributed, 0, `${where}: every access-log line names its client`);
        if (report.parsed === 0) {
          // The web server's own message (error log, syslog, journal): the app never sees it.
          assert.equal(report.unparseable, 1, `${where}: reported as unparseable`);
          assert.equal(counted(report), 0);
          logErrors++;
          continue;
        }
        if (exception) {
          usedExceptions.add(exception);
          assert.equal(counted(report), 0, `${where}: listed as not applicable, and indeed not counted`);
          logNa++;
          continue;
        }
        assert.equal(
          counted(report) > 0,
          line.match,
          `${where}: fail2ban says ${line.match ? 'a failure' : 'no match'}; jailkeeper counted ${counted(report)} (${JSON.stringify(result.config.jails)})`,
        );
        logAgreed++;
      }
      agreed += logAgreed;
      errorLog += logErrors;
      summary.push(
        `${log}: ${logAgreed} access-log lines agree, ${logNa} not applicable (listed), ${logErrors} error-log lines`,
      );
    }
    assert.equal(usedExceptions.size, NOT_APPLICABLE.length, 'every listed exception is still needed');
    for (const s of summary) t.diagnostic(s);
    t.diagnostic(`${agreed} access-log lines agree with fail2ban's annotations; ${errorLog} error-log lines`);
    assert.ok(agreed >= 40, `${agreed} access-log lines checked`);
  });

  it('replays each whole log file: the same counts, comments and error-log lines reported as unparseable', async () => {
    for (const log of logs) {
      const text = await readFile(`${LOGS}${log}`, 'utf8');
      const result = imported(log);
      if (!result.ok) continue;
      const parse = createCombinedParser();
      const lines = annotated(log, text);
      const accessLines = lines.filter((l) => parse(l.text) !== undefined);
      const expected = accessLines.filter(
        (l) => l.match && !NOT_APPLICABLE.some((e) => e.log === log && l.text.includes(e.line)),
      );
      const report = await replay(`${LOGS}${log}`, result.config as Record<string, unknown>, {
        crawlerResolver: NO_DNS,
      });
      assert.equal(report.unattributed, 0, log);
      assert.equal(report.parsed, accessLines.length, log);
      assert.equal(report.parsed + report.unparseable, report.lines, `${log}: every line is accounted for`);
      assert.equal(
        counted(report),
        expected.length,
        `${log}: counted ${counted(report)}, fail2ban matches ${expected.length}`,
      );
    }
  });

  it('apache-fakegooglebot with its ignorecommand: the real Googlebot is spared, the fake one counted', async () => {
    const result = imported('apache-fakegooglebot');
    assert.deepEqual(result.config.verifiedCrawlers, { jails: ['apache-fakegooglebot'] });
    const lines = annotated('apache-fakegooglebot', await readFile(`${LOGS}apache-fakegooglebot`, 'utf8'));
    const outcome: Record<string, number> = {};
    for (const line of lines) {
      const report = await replayText(line.text, result.config, GOOGLE_DNS);
      outcome[line.text.split(' ')[line.text.startsWith('www.') ? 1 : 0] as string] = counted(report);
    }
    assert.deepEqual(outcome, { '66.249.66.1': 0, '145.239.69.22': 0, '192.0.2.222': 1 });
  });

  it('reads the zone-less times of the logs as local time, and says how many', async () => {
    const result = imported('apache-zerotolerance');
    const report = await replay(`${LOGS}apache-zerotolerance`, result.config as Record<string, unknown>);
    assert.equal(report.localTimes, report.parsed);
    assert.equal(report.fromMs, new Date(2017, 10, 1, 16, 24, 6).getTime());
  });
});
