import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { checkConfig } from '../src/config.js';
import { importFail2ban, parseIni } from '../src/fail2ban.js';
import { readFail2banConfig, readFilters } from '../src/fail2ban-files.js';
import { SCANNER_PATHS } from '../src/fail2ban-stock.js';
import { translateRegex } from '../src/fail2ban-translate.js';
import { main } from '../src/main.js';
import { FAIL2BAN_CONF, FAIL2BAN_SKIP } from './fail2ban-data.js';

const DIR = fileURLToPath(new URL('./fixtures/fail2ban/', import.meta.url));

async function filters(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(`${DIR}filter.d`)) {
    out[name.replace(/\.(conf|local)$/, '')] = await readFile(`${DIR}filter.d/${name}`, 'utf8');
  }
  return out;
}

/** Whatever was translated must be a configuration jailkeeper takes as it is. */
async function valid(config: object, what: string) {
  assert.deepEqual(
    checkConfig(config as Record<string, unknown>),
    [],
    `${what} translates to a valid config`,
  );
  const keeper = createJailkeeper(config as JailkeeperOptions);
  await keeper.close();
}

async function load(file: string, withFilters = true) {
  const result = importFail2ban(await readFile(DIR + file, 'utf8'), withFilters ? await filters() : {});
  await valid(result.config, file);
  return result;
}

/** fail2ban's stock jail.conf plus a jail.local, with fail2ban's own filter.d (Debian's package, see fail2ban-data.ts). */
async function stock(jailLocal: string) {
  const result = importFail2ban(
    [
      { name: 'jail.conf', text: await readFile(`${FAIL2BAN_CONF}jail.conf`, 'utf8') },
      { name: 'jail.local', text: jailLocal },
    ],
    await readFilters(`${FAIL2BAN_CONF}filter.d`),
  );
  if (result.ok) await valid(result.config, jailLocal);
  return result;
}

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t), env: {}, isTTY: false });
  return { code, out, err };
}

describe('import-fail2ban on the seed articles', () => {
  it('000: the /ws incident: ignoreip with host bits and a placeholder, nginx-forbidden at maxretry 2, the /ws ignoreregex as exempt', async () => {
    const { config, notes } = await load('000-ws-false-bans.local');
    assert.deepEqual(config.ignoreIp, ['127.0.0.0/8']);
    assert.deepEqual(config.jails['nginx-forbidden'], {
      statuses: [403],
      methods: ['GET', 'POST', 'HEAD'],
      maxRetry: 2,
      exempt: ['/ws**'],
    });
    assert.ok(
      notes.some((n) => /ignoreip 127\.0\.0\.1\/8 has host bits set; written as 127\.0\.0\.0\/8/.test(n)),
    );
    assert.ok(notes.some((n) => /ignoreip myStaticIP is not an address/.test(n)));
    assert.ok(
      notes.some((n) => /ignoreregex .*GET \/ws.* becomes exempt \["\/ws\*\*"\]/.test(n)),
      notes.join('\n'),
    );
  });

  it('001: the nginx jails: statuses per filter, ban times, and what stays in fail2ban', async () => {
    const { config, notes } = await load('001-nginx-jails.local');
    assert.deepEqual(config.jails['nginx-http-auth'], { statuses: [401], maxRetry: 3 });
    assert.deepEqual(config.jails['nginx-404'], {
      statuses: [404, 403],
      methods: ['GET', 'POST', 'HEAD'],
      maxRetry: 3,
      banTime: '1d',
    });
    assert.deepEqual(config.jails['nginx-limit-req'], { statuses: [429], maxRetry: 10, banTime: '1d' });
    assert.deepEqual(config.jails['nginx-noscript']?.paths, [
      '/**.php',
      '/**.asp',
      '/**.exe',
      '/**.pl',
      '/**.cgi',
    ]);
    assert.equal(config.jails['nginx-badbots'], undefined);
    assert.ok(notes.some((n) => /\[nginx-badbots\].*unknown here.*userAgents/.test(n)));

    const custom = await load('001-custom.conf');
    assert.deepEqual(Object.keys(custom.config.jails).sort(), [
      'nginx-4xx',
      'nginx-botsearch',
      'nginx-forbidden',
      'nginx-http-auth',
    ]);
    assert.deepEqual(custom.config.jails['nginx-4xx']?.statuses, [400, 403, 404]);
    // Not every 404: the scanners' paths only.
    assert.deepEqual(custom.config.jails['nginx-botsearch']?.paths, [...SCANNER_PATHS]);
    for (const name of ['sshd', 'nginx-sslerror', 'ufw']) {
      assert.ok(
        custom.notes.some((n) => n.startsWith(`[${name}]: watches`) && /keep it in fail2ban/.test(n)),
        name,
      );
    }
  });

  it('002: the whitelist-after-login jail becomes a pardon on the login jail; hostnames are reported', async () => {
    const { config, notes } = await load('002-whitelist.local');
    assert.deepEqual(config.jails['apache-loginfail'], {
      statuses: [401, 403, 404],
      methods: ['GET', 'POST', 'HEAD'],
      paths: ['/login/**'],
      maxRetry: 5,
      banTime: '2d',
      pardon: { statuses: [200] },
    });
    assert.equal(config.jails['apache-whitelist'], undefined);
    assert.ok(
      notes.some((n) =>
        /\[apache-whitelist\]: the whitelist-after-login jail becomes `pardon` on apache-loginfail/.test(n),
      ),
    );
    assert.ok(notes.some((n) => /ignoreip 192\.168\.0 is not an address/.test(n)));
    assert.ok(notes.some((n) => /ignoreip secure\.example\.net is not an address/.test(n)));
  });

  it('003: an unknown filter is left out and said so; with no jail at all the import is not ok', async () => {
    const result = importFail2ban(await readFile(`${DIR}003-realip.local`, 'utf8'));
    assert.equal(result.ok, false);
    assert.deepEqual(result.config.jails, {});
    assert.ok(result.notes.some((n) => /filter nginx-realip is unknown here/.test(n)));
    assert.ok(result.notes.some((n) => /No jail could be translated/.test(n)));
  });

  it('004: a custom filter with a variable, sshd left to fail2ban, mail actions pointed at the notifier', async () => {
    const { config, notes } = await load('004-in-depth.local');
    assert.deepEqual(config.jails['apache-excessive'], { statuses: [429], methods: ['GET', 'POST', 'HEAD'] });
    assert.ok(notes.some((n) => /\[sshd\]: watches sshd/.test(n)));
    assert.ok(
      notes.some((n) => /action = %\(action_mwl\)s: mail actions become createWebhookNotifier/.test(n)),
    );
  });

  it('translates increment, recidive, findtime, disabled jails and bad values, saying what it changed', async () => {
    const { config, notes } = importFail2ban(`
[DEFAULT]
bantime.increment = true
bantime.factor = 2
bantime.maxtime = 5w
bantime.rndtime = 10m
findtime = 1h

[nginx-http-auth]
enabled = true
maxretry = five
bantime = ten minutes

[nginx-forbidden]
ignoreip = 203.0.113.0/24

[recidive]
enabled = true
bantime = 1w
findtime = 1d
maxretry = 3
`);
    assert.deepEqual(config.jails['nginx-http-auth'], {
      statuses: [401],
      findTime: '1h',
      banTimeIncrement: { factor: 2, maxTime: '5w', jitter: '10m' },
    });
    assert.equal(config.jails['nginx-forbidden']?.enabled, false);
    assert.deepEqual(config.ignoreIp, ['203.0.113.0/24']);
    assert.deepEqual(config.recidive, { maxRetry: 3, findTime: '1d', banTime: '1w' });
    assert.ok(notes.some((n) => /maxretry = five is not a positive integer/.test(n)));
    assert.ok(notes.some((n) => /bantime = ten minutes: not a duration/.test(n)));
    assert.ok(
      notes.some((n) => /\[nginx-forbidden\]: not enabled in fail2ban; kept with enabled: false/.test(n)),
    );
    assert.ok(notes.some((n) => /own ignoreip becomes the global ignoreIp/.test(n)));
    await valid(config, 'the inline jail.local');
  });

  it('parses INI continuation lines, comments and interpolation the fail2ban way', () => {
    const ini = parseIni('[a]\nkey = one\n  two\n# comment\n; other\nx: 1 # trailing\nempty =\n  first\n');
    assert.equal(ini.get('a')?.get('key'), 'one\ntwo');
    assert.equal(ini.get('a')?.get('x'), '1');
    assert.equal(ini.get('a')?.get('empty'), 'first');
  });
});

describe('import-fail2ban reads a configuration the way fail2ban does', () => {
  it('jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, in that order, with [DEFAULT] and %(var)s', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jk-f2b-'));
    await mkdir(join(dir, 'jail.d'));
    await writeFile(
      join(dir, 'jail.conf'),
      '[DEFAULT]\nmaxretry = 5\nbantime = 600\nfindtime = 600\nenabled = false\nmy_ban = 2h\n\n[nginx-http-auth]\nport = http,https\n\n[nginx-limit-req]\nport = http,https\n\n[sshd]\nport = ssh\n',
    );
    await writeFile(join(dir, 'jail.d', 'a.conf'), '[nginx-http-auth]\nmaxretry = 7\n');
    await writeFile(join(dir, 'jail.d', 'b.conf'), '[nginx-http-auth]\nmaxretry = 8\nbantime = %(my_ban)s\n');
    await writeFile(join(dir, 'jail.local'), '[nginx-http-auth]\nenabled = true\nmaxretry = 9\n');
    await writeFile(join(dir, 'jail.d', 'z.local'), '[nginx-http-auth]\nfindtime = 30m\n');

    for (const path of [dir, join(dir, 'jail.local')]) {
      const read = await readFail2banConfig(path);
      assert.deepEqual(
        read.files.map((f) => f.name),
        [
          'jail.conf',
          join('jail.d', 'a.conf'),
          join('jail.d', 'b.conf'),
          'jail.local',
          join('jail.d', 'z.local'),
        ],
      );
      const { config, notes, ok } = importFail2ban(read.files, read.filters);
      assert.equal(ok, true);
      // jail.local enabled it and set maxretry; jail.conf's [DEFAULT] and jail.d still apply.
      assert.deepEqual(config.jails, {
        'nginx-http-auth': { statuses: [401], maxRetry: 9, findTime: '30m', banTime: '2h' },
      });
      assert.ok(
        notes.some((n) =>
          /2 jail\(s\) of jail\.conf are not enabled and were skipped: nginx-limit-req, sshd/.test(n),
        ),
      );
    }
  });

  it('--filters adds to the built-in knowledge: stock error-log filters keep their status, access-log ones are translated', {
    skip: FAIL2BAN_SKIP,
  }, async () => {
    const { config, notes } = await stock(
      '[nginx-http-auth]\nenabled = true\n[apache-auth]\nenabled = true\n[nginx-forbidden]\nenabled = true\n[nginx-limit-req]\nenabled = true\n[nginx-botsearch]\nenabled = true\n',
    );
    assert.deepEqual(config.jails['nginx-http-auth']?.statuses, [401]);
    assert.deepEqual(config.jails['apache-auth']?.statuses, [401]);
    assert.deepEqual(config.jails['nginx-forbidden']?.statuses, [403]);
    assert.deepEqual(config.jails['nginx-limit-req']?.statuses, [429]);
    // nginx-botsearch from its own failregex: exactly the built-in scanner paths.
    assert.deepEqual(new Set(config.jails['nginx-botsearch']?.paths as string[]), new Set(SCANNER_PATHS));
    assert.ok(
      notes.some((n) =>
        /\[nginx-botsearch\] nginx-botsearch failregex line 2: it reads nginx's error log, which the app never sees; not translated/.test(
          n,
        ),
      ),
      notes.join('\n'),
    );
    assert.ok(
      notes.some((n) =>
        /\[apache-auth\] apache-auth failregex lines 1, 2, [\d, ]+: (through its prefregex, )?it reads Apache's error log/.test(
          n,
        ),
      ),
      notes.join('\n'),
    );
  });

  it('never reads a status from what is not one: apache-overflows stays in fail2ban, AH00126 is no 456', {
    skip: FAIL2BAN_SKIP,
  }, async () => {
    const result = await stock('[apache-overflows]\nenabled = true\n');
    assert.equal(result.ok, false);
    assert.deepEqual(result.config.jails, {});
    assert.ok(
      result.notes.some((n) =>
        /apache-overflows: .*AH00126\) are not HTTP statuses; keep it in fail2ban/.test(n),
      ),
    );
    // Nor in a custom error-log filter naming a code.
    const custom = importFail2ban('[mine]\nenabled = true\n', {
      mine: '[Definition]\nfailregex = ^\\[[^]]*\\] \\[error\\] \\[client <HOST>\\] AH00126: Invalid URI, code 456\n',
    });
    assert.equal(custom.ok, false);
    assert.ok(
      custom.notes.some((n) => /failregex line 1: it reads Apache's error log/.test(n)),
      custom.notes.join('\n'),
    );
  });

  it('apache-badbots: the bot list becomes userAgents; apache-fakegooglebot: verifiedCrawlers', {
    skip: FAIL2BAN_SKIP,
  }, async () => {
    const { config } = await stock(
      '[apache-badbots]\nenabled = true\n[apache-fakegooglebot]\nenabled = true\nmaxretry = 1\nignorecommand = %(fail2ban_confpath)s/filter.d/ignorecommands/apache-fakegooglebot <ip>\n',
    );
    const bots = config.jails['apache-badbots'] as {
      userAgents: string[];
      maxRetry: number;
      banTime: string;
    };
    assert.ok(bots.userAgents.includes('TrackBack/1.02'));
    assert.ok(bots.userAgents.includes('EmailSiphon'));
    // One user agent per alternative of the filter's two lists (95 in fail2ban 1.0.2).
    const filter = await readFile(`${FAIL2BAN_CONF}filter.d/apache-badbots.conf`, 'utf8');
    const alternatives = ['badbotscustom', 'badbots']
      .map((name) => new RegExp(`^${name} = (.*)$`, 'm').exec(filter)?.[1]?.split('|').length ?? 0)
      .reduce((a, b) => a + b, 0);
    assert.ok(alternatives > 50, `${alternatives} bots in the filter`);
    assert.equal(bots.userAgents.length, alternatives);
    assert.equal(bots.maxRetry, 1, "jail.conf's maxretry");
    assert.equal(bots.banTime, '2d', "jail.conf's bantime = 172800");
    assert.deepEqual(config.jails['apache-fakegooglebot'], {
      userAgents: ['Googlebot/'],
      maxRetry: 1,
      findTime: '10m',
      banTime: '10m',
    });
    assert.deepEqual(config.verifiedCrawlers, { jails: ['apache-fakegooglebot'] });
  });

  it('a filter whose lines count different things becomes one jail per kind, and says so', () => {
    const scanners = String.raw`[Definition]
failregex = ^<HOST> -.*"(GET|POST) /(php)?[Mm]y[Aa]dmin/setup\.php HTTP/1\.[01]" 404
            ^<HOST> -.*"(GET|POST) /cgi-bin/probe\.cgi HTTP/1\.[01]" 404
            ^<HOST> -.*"(GET|POST) [^"]*" \d+ \d+ "[^"]*" "(?:evilscan/\d|Jorgee)"$
            ^<HOST> -.*"GET /backdoor\?cmd=\S+ HTTP
`;
    const { config, notes } = importFail2ban('[scanners]\nenabled = true\nmaxretry = 1\n', { scanners });
    assert.deepEqual(Object.keys(config.jails), ['scanners', 'scanners.2', 'scanners.3']);
    // Lines 1 and 2 count the same thing (404s on paths): one jail, their paths together.
    assert.deepEqual(config.jails.scanners, {
      statuses: [404],
      methods: ['GET', 'POST', 'HEAD'],
      paths: [
        '/MyAdmin/setup.php',
        '/Myadmin/setup.php',
        '/myAdmin/setup.php',
        '/myadmin/setup.php',
        '/phpMyAdmin/setup.php',
        '/phpMyadmin/setup.php',
        '/phpmyAdmin/setup.php',
        '/phpmyadmin/setup.php',
        '/cgi-bin/probe.cgi',
      ],
      maxRetry: 1,
    });
    assert.deepEqual(config.jails['scanners.2']?.userAgents, ['evilscan/', 'Jorgee']);
    // A line that reads no status counts every response on its path: said in words.
    assert.deepEqual(config.jails['scanners.3'], {
      methods: ['GET', 'HEAD'],
      paths: ['/backdoor'],
      maxRetry: 1,
      statuses: 'any',
    });
    assert.ok(notes.some((n) => /reads no status.*statuses: 'any'/.test(n)));
    assert.ok(notes.some((n) => /becomes 3 jails .*each counts on its own/.test(n)));
    assert.ok(notes.some((n) => /line 4: the query string condition is left out/.test(n)));

    // apache-zerotolerance without its filter.d file: the built-in knowledge, three jails as well.
    const stockOnly = importFail2ban('[apache-zerotolerance]\nenabled = true\nmaxretry = 1\n');
    assert.deepEqual(Object.keys(stockOnly.config.jails), [
      'apache-zerotolerance',
      'apache-zerotolerance.2',
      'apache-zerotolerance.3',
    ]);
    assert.deepEqual(stockOnly.config.jails['apache-zerotolerance.2']?.userAgents, [
      'robertdavidgraham/sysscan',
      'masscan/',
      'Jorgee',
      ':;};',
    ]);
    assert.ok(stockOnly.notes.some((n) => /becomes 3 jails/.test(n)));
  });

  it('says, line by line, the ignoreregex it cannot translate; a filter argument selects variables', async () => {
    const { config, notes } = importFail2ban(
      '[login]\nenabled = true\nfilter = app-login[login_path=/signin]\nignoreregex = ^<HOST> .* "POST /signin HTTP/1\\.1" 401 .* "curl/\n                ^<HOST> -.*"GET /healthz\n',
      {
        'app-login':
          '[Definition]\nlogin_path = /login\nfailregex = ^<HOST> -.*"POST <login_path> HTTP/1\\.[01]" 401\nignoreregex = ^<HOST> .*"(GET|POST) /internal/.* HTTP\n',
      },
    );
    assert.deepEqual(config.jails.login, {
      statuses: [401],
      methods: ['POST'],
      paths: ['/signin'],
      exempt: ['/internal/**', '/healthz**'],
    });
    assert.ok(
      notes.some((n) =>
        /ignoreregex .*curl\/" of the jail cannot be translated \(it asks for a user agent as well as a route/.test(
          n,
        ),
      ),
      notes.join('\n'),
    );
    assert.ok(notes.some((n) => /ignoreregex .*\/internal\/.* of app-login becomes exempt/.test(n)));
  });

  it('translates the parts of a failregex that carry meaning for an app', () => {
    const cases: Array<[string, object]> = [
      [
        '^<HOST> -.*"(GET|POST) /wp-login\\.php HTTP/1\\.[01]" (401|403)',
        { statuses: [401, 403], methods: ['GET', 'POST', 'HEAD'], paths: ['/wp-login.php'] },
      ],
      ['^<HOST> - \\S+ \\[\\] "[^"]*" 400', { statuses: [400] }],
      ['^<HOST> -.*"\\S+ /api/v(1|2)/login\\S* HTTP', { paths: ['/api/v1/login**', '/api/v2/login**'] }],
      [
        '^<HOST> .* "[A-Z]+ [^"]*" \\d+ \\d+ "[^"]*" "(?:EvilBot|BadCrawler/\\d)"$',
        { userAgents: ['EvilBot', 'BadCrawler/'] },
      ],
    ];
    for (const [regex, rule] of cases) {
      const result = translateRegex(regex);
      assert.ok(result.ok, regex);
      assert.deepEqual(result.ok && result.rules, [rule], regex);
    }
    const success = translateRegex('^<HOST> .*"GET /knock HTTP/1\\.1" 200');
    assert.equal(success.ok, false);
    assert.match(!success.ok ? success.reason : '', /status 200, a success/);
    const everything = translateRegex('^<HOST> .*"POST ');
    assert.match(
      !everything.ok ? everything.reason : '',
      /names no status, path or user agent \(only POST\)/,
    );
  });
});

describe('the import-fail2ban command', () => {
  it('reads a directory, writes valid JSON ending with a newline, exits 0; exits 1 with the reasons when no jail translates', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jk-f2b-cmd-'));
    await writeFile(join(dir, 'jail.local'), '[nginx-http-auth]\nenabled = true\nmaxretry = 3\n');
    const ok = await run(['import-fail2ban', dir]);
    assert.equal(ok.code, 0, ok.err);
    assert.ok(ok.out.endsWith('}\n'));
    assert.deepEqual(JSON.parse(ok.out).jails, { 'nginx-http-auth': { statuses: [401], maxRetry: 3 } });
    assert.match(ok.err, /^Read jail\.local \(no filter\.d: the stock filters are known without it\)\./);

    const json = await run(['import-fail2ban', dir, '--json']);
    assert.equal(json.code, 0);
    assert.ok(json.out.endsWith('\n'));
    assert.equal(JSON.parse(json.out).ok, true);

    await writeFile(join(dir, 'jail.local'), '[sshd]\nenabled = true\n[apache-overflows]\nenabled = true\n');
    const none = await run(['import-fail2ban', dir, '--out', join(dir, 'out.json')]);
    assert.equal(none.code, 1);
    assert.equal(none.out, '');
    assert.match(none.err, /\[sshd\]: watches sshd/);
    assert.match(none.err, /apache-overflows: .*keep it in fail2ban/);
    assert.match(none.err, /Nothing was written: no jail could be translated/);
    await assert.rejects(readFile(join(dir, 'out.json')), { code: 'ENOENT' });
    const noneJson = await run(['import-fail2ban', dir, '--json']);
    assert.equal(noneJson.code, 1);
    assert.equal(JSON.parse(noneJson.out).ok, false);

    const missing = await run(['import-fail2ban', join(dir, 'nope')]);
    assert.equal(missing.code, 2);
  });
});
