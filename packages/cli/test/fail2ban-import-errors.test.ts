/**
 * What the fail2ban importer says about configurations it must not translate as they stand
 * (issue 27): a failregex that does not compile, `--out` into a missing directory, a misspelt
 * `enabled`, traefik-auth's default mode, and which log a filter that is not an access log reads.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { importFail2ban } from '../src/fail2ban.js';
import { readFail2banConfig } from '../src/fail2ban-files.js';
import { main } from '../src/main.js';
import { failregexError } from '../src/regex-check.js';
import { FAIL2BAN_CONF, FAIL2BAN_SKIP } from './fail2ban-data.js';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t), env: {}, isTTY: false });
  return { code, out, err };
}

/** fail2ban's stock files with `local` as jail.local. */
async function stock(local: string) {
  const read = await readFail2banConfig(`${FAIL2BAN_CONF}jail.conf`);
  return importFail2ban([...read.files, { name: 'jail.local', text: local }], read.filters);
}

const BAD = '^<HOST> .* "GET /(unclosed HTTP/1.1" 404**';

describe('import-fail2ban refuses what fail2ban refuses', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jk-f2b-errors-'));
    await mkdir(join(dir, 'filter.d'));
    await writeFile(join(dir, 'filter.d', 'broken.conf'), `[Definition]\nfailregex = ${BAD}\n`);
    await writeFile(
      join(dir, 'jail.local'),
      '[broken]\nenabled = true\nfilter = broken\n\n[nginx-forbidden]\nenabled = true\n',
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a failregex that does not compile is a coded error, exit 1, nothing written; no jail is made of it', async () => {
    const result = importFail2ban('[broken]\nenabled = true\nfilter = broken\n', {
      broken: `[Definition]\nfailregex = ${BAD}\n`,
    });
    assert.equal(result.ok, false);
    assert.deepEqual(Object.keys(result.config.jails), []);
    assert.equal(result.errors[0]?.code, 'JK_ERR_FAIL2BAN_REGEX');
    assert.match(
      result.errors[0]?.message ?? '',
      /\[broken\]: broken failregex line 1 does not compile \(nothing to repeat\)/,
    );

    const out = join(dir, 'out.json');
    const res = await run(['import-fail2ban', dir, '--out', out]);
    assert.equal(res.code, 1, res.err);
    assert.match(res.err, /JK_ERR_FAIL2BAN_REGEX: \[broken\]/);
    assert.match(res.err, /Nothing was written/);
    assert.deepEqual((await readdir(dir)).sort(), ['filter.d', 'jail.local'], 'no file written');
    const json = await run(['import-fail2ban', dir, '--json']);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.out).errors[0].code, 'JK_ERR_FAIL2BAN_REGEX');
  });

  it('a disabled jail with such a filter is a note, not an error', () => {
    const result = importFail2ban(
      '[broken]\nenabled = false\nfilter = broken\n[nginx-forbidden]\nenabled = true\n',
      {
        broken: `[Definition]\nfailregex = ${BAD}\n`,
      },
    );
    assert.deepEqual(result.errors, []);
    assert.ok(result.ok);
    assert.ok(
      result.notes.some((n) =>
        /^\[broken\]: not enabled in fail2ban, and broken failregex line 1 does not compile/.test(n),
      ),
    );
  });

  it('failregexError: what Python refuses; Python-only syntax compiles', () => {
    for (const [regex, why] of [
      [BAD, 'nothing to repeat'],
      ['^<HOST> x[', 'unterminated character class'],
      ['^<HOST> x)', "unmatched ')'"],
      ['^<HOST> (x', 'unterminated group'],
      ['*x', 'nothing to repeat'],
    ]) {
      assert.equal(failregexError(regex as string), why, regex);
    }
    for (const regex of [
      '(?i)^<HOST> (?P<a>x)(?P=a)',
      '^(?:(?i:get|post)) (?#a comment)\\S+\\Z',
      '^<HOST> a++ (?>b)',
      '^<HOST> (x)?(?(1)y|z)',
      '^<HOST> a\n^<HOST> b',
    ]) {
      assert.equal(failregexError(regex), undefined, regex);
    }
  });

  it('--out into a missing directory: exit 2 and a sentence, before anything is read', async () => {
    const res = await run(['import-fail2ban', dir, '--out', join(dir, 'missing', 'x.json')]);
    assert.equal(res.code, 2);
    assert.match(res.err, /--out .*x\.json: the directory .*missing does not exist/);
    assert.doesNotMatch(res.err, /unexpected error|\n\s+at /);
    const isDir = await run(['import-fail2ban', dir, '--out', dir]);
    assert.equal(isDir.code, 2);
    assert.match(isDir.err, /is a directory/);
  });

  it('enabled = ture is said (fail2ban warns), and taken as not enabled', () => {
    const result = importFail2ban('[nginx-forbidden]\nenabled = ture\n[nginx-botsearch]\nenabled = true\n');
    assert.ok(result.notes.some((n) => /^\[nginx-forbidden\]: enabled = ture is not a boolean/.test(n)));
    assert.equal(result.config.jails['nginx-forbidden']?.enabled, false);
    assert.ok(!result.notes.some((n) => /^\[nginx-botsearch\]: enabled/.test(n)));
  });
});

describe("import-fail2ban on fail2ban's stock filters", { skip: FAIL2BAN_SKIP }, () => {
  it('every stock failregex compiles (the check refuses nothing fail2ban runs)', async () => {
    const result = await stock('');
    assert.deepEqual(result.errors, []);
    const all = await readFail2banConfig(`${FAIL2BAN_CONF}jail.conf`);
    const enabledAll = Object.keys(all.filters)
      .filter((f) => !f.startsWith('common') && !f.endsWith('-common'))
      .map((f) => `[${f}]\nenabled = true\n`)
      .join('');
    assert.deepEqual((await stock(enabledAll)).errors, []);
  });

  it("traefik-auth's default mode (a 401 only with a user name) is said, not silently widened", async () => {
    const normal = await stock('[traefik-auth]\nenabled = true\n');
    assert.deepEqual(normal.config.jails['traefik-auth']?.statuses, [401]);
    assert.ok(
      normal.notes.some((n) =>
        /traefik-auth failregex line 1: it counts only requests that sent a user name/.test(n),
      ),
    );
    const ddos = await stock('[traefik-auth]\nenabled = true\nfilter = traefik-auth[mode=ddos]\n');
    assert.ok(ddos.notes.some((n) => /it counts only requests that sent no user name/.test(n)));
    const aggressive = await stock(
      '[traefik-auth]\nenabled = true\nfilter = traefik-auth[mode=aggressive]\n',
    );
    assert.ok(!aggressive.notes.some((n) => /sent (a|no) user name/.test(n)));
  });

  it('the log a filter reads: syslog-style lines for drupal-auth, bitwarden, phpmyadmin-syslog and suhosin; nginx only for nginx', async () => {
    const names = [
      'drupal-auth',
      'bitwarden',
      'phpmyadmin-syslog',
      'suhosin',
      'nginx-http-auth',
      'nginx-limit-req',
    ];
    const result = await stock(names.map((n) => `[${n}]\nenabled = true\n`).join(''));
    const reason = (name: string) =>
      result.notes.find((n) => n.startsWith(`[${name}] ${name} failregex line 1:`)) ?? '';
    for (const name of ['drupal-auth', 'bitwarden', 'phpmyadmin-syslog', 'suhosin']) {
      assert.match(reason(name), /it reads syslog-style lines/, name);
      assert.doesNotMatch(reason(name), /nginx/, name);
    }
    assert.match(reason('bitwarden'), /written by Bitwarden-Identity/);
    assert.match(reason('phpmyadmin-syslog'), /written by phpMyAdmin/);
    for (const name of ['nginx-http-auth', 'nginx-limit-req'])
      assert.match(reason(name), /nginx's error log/, name);
  });
});
