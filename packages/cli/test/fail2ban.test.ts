import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { checkConfig } from '../src/config.js';
import { importFail2ban, parseIni } from '../src/fail2ban.js';

const DIR = fileURLToPath(new URL('./fixtures/fail2ban/', import.meta.url));

async function filters(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(`${DIR}filter.d`)) {
    out[name.replace(/\.(conf|local)$/, '')] = await readFile(`${DIR}filter.d/${name}`, 'utf8');
  }
  return out;
}

async function load(file: string, withFilters = true) {
  const result = importFail2ban(await readFile(DIR + file, 'utf8'), withFilters ? await filters() : {});
  // Whatever was translated must be a configuration jailkeeper takes as it is.
  assert.deepEqual(
    checkConfig(result.config as Record<string, unknown>),
    [],
    `${file} translates to a valid config`,
  );
  const keeper = createJailkeeper(result.config as JailkeeperOptions);
  await keeper.close();
  return result;
}

describe('import-fail2ban on the seed articles', () => {
  it('000: the /ws incident: ignoreip with host bits and a placeholder, nginx-forbidden at maxretry 2, the /ws ignoreregex', async () => {
    const { config, notes } = await load('000-ws-false-bans.local');
    assert.deepEqual(config.ignoreIp, ['127.0.0.0/8']);
    assert.deepEqual(config.jails['nginx-forbidden'], { statuses: [403], maxRetry: 2 });
    assert.ok(
      notes.some((n) => /ignoreip 127\.0\.0\.1\/8 has host bits set; written as 127\.0\.0\.0\/8/.test(n)),
    );
    assert.ok(notes.some((n) => /ignoreip myStaticIP is not an address/.test(n)));
    assert.ok(
      notes.some((n) => /ignoreregex .*GET \/ws.*use `exempt`/.test(n)),
      notes.join('\n'),
    );
  });

  it('001: the nginx jails: statuses per filter, ban times, and what stays in fail2ban', async () => {
    const { config, notes } = await load('001-nginx-jails.local');
    assert.deepEqual(config.jails['nginx-http-auth'], { statuses: [401], maxRetry: 3 });
    assert.deepEqual(config.jails['nginx-404'], {
      statuses: [404, 403],
      methods: ['GET', 'POST'],
      maxRetry: 3,
      banTime: '1d',
    });
    assert.deepEqual(config.jails['nginx-limit-req'], { statuses: [429], maxRetry: 10, banTime: '1d' });
    assert.equal(config.jails['nginx-badbots'], undefined);
    assert.ok(notes.some((n) => /\[nginx-badbots\].*userAgents/.test(n)));
    assert.ok(notes.some((n) => /\[nginx-noscript\]: filter nginx-noscript is unknown here/.test(n)));

    const custom = await load('001-custom.conf');
    assert.deepEqual(Object.keys(custom.config.jails).sort(), [
      'nginx-4xx',
      'nginx-botsearch',
      'nginx-forbidden',
      'nginx-http-auth',
    ]);
    assert.deepEqual(custom.config.jails['nginx-4xx']?.statuses, [400, 403, 404]);
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
      methods: ['GET', 'POST'],
      paths: ['/login', '/login/**'],
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

  it('003: an unknown filter is left out and said so; the mail action is not a jail option', async () => {
    const result = importFail2ban(await readFile(`${DIR}003-realip.local`, 'utf8'));
    assert.deepEqual(result.config.jails, {});
    assert.ok(result.notes.some((n) => /filter nginx-realip is unknown here/.test(n)));
    assert.ok(result.notes.some((n) => /No jail could be translated/.test(n)));
  });

  it('004: a custom filter with a variable, sshd left to fail2ban, mail actions pointed at the notifier', async () => {
    const { config, notes } = await load('004-in-depth.local');
    assert.deepEqual(config.jails['apache-excessive'], { statuses: [429] });
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
    assert.deepEqual(checkConfig(config as Record<string, unknown>), []);
  });

  it('parses INI continuation lines, comments and interpolation the fail2ban way', () => {
    const ini = parseIni('[a]\nkey = one\n  two\n# comment\n; other\nx: 1 # trailing\n');
    assert.equal(ini.get('a')?.get('key'), 'one\ntwo');
    assert.equal(ini.get('a')?.get('x'), '1');
  });
});
