import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkConfig, loadConfig } from '../src/config.js';
import { main } from '../src/main.js';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t), env: {}, isTTY: false });
  return { code, out, err };
}

async function file(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jk-config-'));
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('check-config', () => {
  it('reports every problem with its code and option, not only the first', () => {
    const problems = checkConfig({
      jails: {
        login: { statuses: [401], maxRetry: 0 },
        ws: { statuses: [700], paths: ['/ws'] },
        api: { statuses: [403], banTime: 'ten minutes', colour: 'red' },
      },
      ignoreIp: ['10.0.0.1/8'],
      trustedProxies: 'everyone',
      frobnicate: true,
    });
    const found = problems.map((p) => `${p.code} ${p.option}`);
    for (const expected of [
      'JK_ERR_INVALID_OPTION jails.login.maxRetry',
      'JK_ERR_INVALID_STATUS jails.ws.statuses[0]',
      'JK_ERR_INVALID_CIDR ignoreIp[0]',
      'JK_ERR_UNKNOWN_OPTION frobnicate',
    ]) {
      assert.ok(found.includes(expected), `${expected} in ${found.join(', ')}`);
    }
    assert.ok(
      found.some((f) => f.startsWith('JK_ERR_') && f.includes('jails.api')),
      found.join(', '),
    );
    assert.ok(
      found.some((f) => f.includes('trustedProxies')),
      found.join(', '),
    );
    assert.ok(problems.length >= 6, found.join(', '));
  });

  it('reports every problem of a jail, of the defaults and of recidive, not the first of each (issue 15)', () => {
    const problems = checkConfig({
      jails: {
        api: { statuses: [700], maxRetry: 0, banTime: 'ten minutes', colour: 'red', methods: ['no method'] },
        login: {
          statuses: [401],
          paths: ['/login'],
          findTime: 'soon',
          pardon: { statuses: [200], maxRetry: 1 },
          maxRetry: 5,
        },
      },
      defaults: { maxRetry: -1, findTime: 'later' },
      recidive: { maxRetry: 0, banTime: 'forever?' },
      verifiedCrawlers: { jails: ['api', 'nope'] },
    });
    const found = problems.map((p) => `${p.code} ${p.option}`);
    for (const expected of [
      'JK_ERR_INVALID_STATUS jails.api.statuses[0]',
      'JK_ERR_INVALID_OPTION jails.api.maxRetry',
      'JK_ERR_INVALID_DURATION jails.api.banTime',
      'JK_ERR_UNKNOWN_OPTION jails.api.colour',
      'JK_ERR_INVALID_OPTION jails.api.methods[0]',
      'JK_ERR_INVALID_DURATION jails.login.findTime',
      'JK_ERR_INVALID_OPTION jails.login.pardon.maxRetry',
      'JK_ERR_INVALID_OPTION defaults.maxRetry',
      'JK_ERR_INVALID_DURATION defaults.findTime',
      'JK_ERR_INVALID_OPTION recidive.maxRetry',
      'JK_ERR_INVALID_DURATION recidive.banTime',
      'JK_ERR_INVALID_OPTION verifiedCrawlers.jails[1]',
    ]) {
      assert.ok(found.includes(expected), `${expected} in:\n${found.join('\n')}`);
    }
    assert.ok(!found.includes('JK_ERR_INVALID_OPTION verifiedCrawlers.jails[0]'), 'api is a configured jail');
  });

  it('passes a valid config', () => {
    assert.deepEqual(
      checkConfig({ jails: { login: { statuses: [401], paths: ['/login'] } }, ignoreIp: ['loopback'] }),
      [],
    );
  });

  it("reports a jail that would count every status on its paths, unless it says statuses: 'any' (issue 13)", async () => {
    const problems = checkConfig({
      jails: { login: { paths: ['/login'] }, trap: { statuses: 'any', paths: ['/wp-login.php'] } },
    });
    assert.deepEqual(
      problems.map((p) => `${p.code} ${p.option}`),
      ['JK_WRN_COUNTS_EVERY_STATUS jails.login.statuses'],
    );
    assert.match(problems[0]?.message ?? '', /successes included/);
    const path = await file('every.json', JSON.stringify({ jails: { login: { paths: ['/login'] } } }));
    const res = await run(['check-config', path]);
    assert.equal(res.code, 1);
    assert.match(res.out, /JK_WRN_COUNTS_EVERY_STATUS jails\.login\.statuses/);
  });

  it('is a command: exit 0 and OK for a valid file, exit 1 with the list for a bad one, exit 2 without a file', async () => {
    const good = await file('good.json', JSON.stringify({ jails: { login: { statuses: [401] } } }));
    const ok = await run(['check-config', good]);
    assert.equal(ok.code, 0);
    assert.match(ok.out, /^OK: .*good\.json is a valid jailkeeper configuration/);

    const bad = await file(
      'bad.json',
      JSON.stringify({
        jails: { a: { maxRetry: -1, statuses: [401] }, b: { findTime: 'soon', statuses: [401] } },
      }),
    );
    const res = await run(['check-config', bad]);
    assert.equal(res.code, 1);
    assert.match(res.out, /^JK_ERR_INVALID_OPTION jails\.a\.maxRetry: /m);
    assert.match(res.out, /^JK_ERR_INVALID_DURATION jails\.b\.findTime: /m);
    assert.match(res.out, /2 problem\(s\) in/);
    const jsonOut = (await run(['check-config', bad, '--json'])).out;
    assert.ok(jsonOut.endsWith('}\n'), 'JSON output ends with a newline');
    const json = JSON.parse(jsonOut);
    assert.equal(json.ok, false);
    assert.equal(json.problems.length, 2);

    const broken = await file('broken.json', '{ "jails": ');
    const parse = await run(['check-config', broken]);
    assert.equal(parse.code, 1);
    assert.match(parse.out, /could not be read/);

    const missing = await run(['check-config', '/nonexistent/jk.json']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /No configuration file/);
  });

  it('loads a module config (default export), RegExps included', async () => {
    const path = await file(
      'jk.config.mjs',
      'export default { jails: { wp: { statuses: [404], paths: [/^\\/wp-/] } } };\n',
    );
    const config = await loadConfig(path);
    assert.ok(((config.jails as { wp: { paths: unknown[] } }).wp.paths[0] as RegExp) instanceof RegExp);
    assert.equal((await run(['check-config', path])).code, 0);
  });

  it('reports every bad element of a list, each at its index in the file, not only the first', () => {
    const problems = checkConfig({
      trustedProxies: ['10.0.0.1', 'nope', 'loopback', '300.1.1.1/8', '::1/129'],
      ignoreIp: ['x', 'y'],
      defaults: { statuses: [401, 999] },
      jails: {
        'api.v1': { statuses: [401, 'x', 404, 700], paths: ['/api'], methods: ['GET', 'no method', 'PO ST'] },
        login: { statuses: [401], paths: ['/login'], pardon: { statuses: [200, 'ok', 99] } },
      },
    });
    const found = problems.map((p) => `${p.code} ${p.option}`);
    for (const expected of [
      'JK_ERR_INVALID_CIDR trustedProxies[1]',
      'JK_ERR_INVALID_CIDR trustedProxies[3]',
      'JK_ERR_INVALID_CIDR trustedProxies[4]',
      'JK_ERR_INVALID_CIDR ignoreIp[0]',
      'JK_ERR_INVALID_CIDR ignoreIp[1]',
      'JK_ERR_INVALID_STATUS defaults.statuses[1]',
      'JK_ERR_INVALID_STATUS jails.api.v1.statuses[1]',
      'JK_ERR_INVALID_STATUS jails.api.v1.statuses[3]',
      'JK_ERR_INVALID_OPTION jails.api.v1.methods[1]',
      'JK_ERR_INVALID_OPTION jails.api.v1.methods[2]',
      'JK_ERR_INVALID_STATUS jails.login.pardon.statuses[1]',
      'JK_ERR_INVALID_STATUS jails.login.pardon.statuses[2]',
    ]) {
      assert.ok(found.includes(expected), `${expected} in ${found.join(', ')}`);
    }
    assert.equal(found.filter((f) => f.includes('trustedProxies')).length, 3, found.join(', '));
    // Each message names the element it is about, by its index in the file.
    const fourth = problems.find((p) => p.option === 'trustedProxies[3]');
    assert.match(fourth?.message ?? '', /^trustedProxies\[3\] must be .*received "300\.1\.1\.1\/8"/);
    assert.match(
      problems.find((p) => p.option === 'trustedProxies[4]')?.message ?? '',
      /received "::1\/129"/,
    );
  });

  it('reads a list given as one string (trust proxy words) element by element too', () => {
    const found = checkConfig({
      trustedProxies: 'loopback, nope, 10.0.0.0/8, 300.1.1.1',
      jails: { a: { statuses: [401] } },
    }).map((p) => `${p.code} ${p.option}`);
    assert.deepEqual(found, [
      'JK_ERR_INVALID_CIDR trustedProxies[1]',
      'JK_ERR_INVALID_CIDR trustedProxies[3]',
    ]);
  });

  it('says which code and option a config module threw while loading (a misspelt preset), exit 1', async () => {
    const core = pathToFileURL(
      join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'core', 'dist', 'index.js'),
    ).href;
    const path = await file(
      'jk.config.mjs',
      `import { presets } from ${JSON.stringify(core)};\nexport default { jails: { login: { ...presets.logins, paths: ['/login'] } } };\n`,
    );
    const res = await run(['check-config', path, '--json']);
    assert.equal(res.code, 1);
    const { ok, problems } = JSON.parse(res.out);
    assert.equal(ok, false);
    assert.equal(problems[0].code, 'JK_ERR_UNKNOWN_PRESET');
    assert.equal(problems[0].option, 'presets.logins');
    assert.match(problems[0].message, /Did you mean login\?/);
  });

  // Issue 28: the seed incident by configuration. exempt: ['/ws'] is exact, so it exempts none of
  // the room handshakes at '/ws/:room'; the adapters warn at startup, and check-config says it
  // before a deploy when given the app's routes.
  it('--routes: a rule that matches no route while routes below it exist is a problem, with its cover', async () => {
    const config = await file(
      'ws.json',
      JSON.stringify({ jails: { forbidden: { statuses: [403], exempt: ['/ws', '/health'] } } }),
    );
    const routes = await file('routes.txt', '# the app\nGET /ws/:room\nGET  /health\n\nPOST /login\n');
    const res = await run(['check-config', config, '--routes', routes]);
    assert.equal(res.code, 1, res.out);
    assert.match(
      res.out,
      /^JK_WRN_PATTERN_MISSES_ROUTES jails\.forbidden\.exempt: .*'\/ws', which matches no route of the app, while '\/ws\/:room' starts with it.*Add '\/ws\/\*\*'/m,
    );
    assert.doesNotMatch(res.out, /'\/health'/, 'a rule that names a route is fine');
    assert.match(res.out, /1 problem\(s\)/);

    // Covered: the same routes, as a JSON list, with '/ws/**' in the rules.
    const covered = await file(
      'ws-covered.json',
      JSON.stringify({ jails: { forbidden: { statuses: [403], exempt: ['/ws', '/ws/**', '/health'] } } }),
    );
    const list = await file('routes.json', JSON.stringify(['/ws/:room', '/health', '/login']));
    assert.equal((await run(['check-config', covered, '--routes', list])).code, 0);
    // Without --routes, the routes are not known: nothing to say.
    assert.equal((await run(['check-config', config])).code, 0);
  });

  it('--routes: an unreadable file or a line with no route is a usage error naming it', async () => {
    const config = await file('ok.json', JSON.stringify({ jails: { login: { statuses: [401] } } }));
    const missing = await run(['check-config', config, '--routes', '/nonexistent/routes.txt']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /Cannot read \/nonexistent\/routes\.txt/);
    const bad = await file('bad-routes.txt', 'GET /a\nGET b\n');
    const res = await run(['check-config', config, '--routes', bad]);
    assert.equal(res.code, 2);
    assert.match(res.err, /bad-routes\.txt:2: no route/);
  });
});
