/**
 * The jailkeeper CLI as operators run it: a real process, against a real Redis shared with a running
 * keeper, and against a running example app's admin API.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { until } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { freePort, startRedis, type TestRedis } from './redis-server.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const APP = fileURLToPath(new URL('../examples/express-login/server.js', import.meta.url));
const TOKEN = 'cli-test-token-0123456789';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean = { ...process.env };
  delete clean.REDIS_URL;
  delete clean.JAILKEEPER_TOKEN;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...clean, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

let redis: TestRedis;
const PREFIX = `jk-cli${process.pid}:`;
let keeper: Jailkeeper;
let redisClient: Redis;
let R: string[];

before(async () => {
  if (NO_REDIS) return;
  redis = await startRedis();
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } },
    store: createRedisStore({ client: redisClient, prefix: PREFIX, timeout: 1000 }),
    logger: { info() {}, warn() {}, error() {} },
  });
  await keeper.ready;
  R = ['--redis', redis.url, '--prefix', PREFIX];
});
after(async () => {
  await keeper?.close();
  redisClient?.disconnect();
  await redis?.stop();
});

describe('jailkeeper CLI against Redis, beside a running keeper', { skip: NO_REDIS }, () => {
  it('bans with its own duration and reason; the running keeper refuses the client at once', async () => {
    const ban = await cli([
      'ban',
      '203.0.113.21',
      '--for',
      '2h',
      '--reason',
      'seen scanning',
      '--json',
      ...R,
    ]);
    assert.equal(ban.code, 0, ban.stderr);
    const row = JSON.parse(ban.stdout);
    assert.equal(row.client, '203.0.113.21');
    assert.equal(row.jail, 'manual');
    assert.ok(row.timeLeftMs > 7_100_000 && row.timeLeftMs <= 7_200_000);
    await until(() => keeper.check('203.0.113.21').banned, { within: 5000 });

    const bans = await cli(['bans', '--json', ...R]);
    const parsed = JSON.parse(bans.stdout) as Array<{
      client: string;
      reason: string;
      banCount: number;
      startMs: number;
    }>;
    const mine = parsed.find((b) => b.client === '203.0.113.21');
    assert.equal(mine?.reason, 'seen scanning');
    assert.equal(mine?.banCount, 1);
    assert.ok(Math.abs((mine?.startMs ?? 0) - Date.now()) < 60_000);

    const table = await cli(['bans', ...R]);
    assert.match(table.stdout, /^ADDRESS\s+JAIL\s+SINCE\s+TIME LEFT\s+BANS\s+REASON$/m);
    assert.match(table.stdout, /^203\.0\.113\.21\s+manual\s+\S+Z\s+(2h|1h59m\S*)\s+1\s+seen scanning$/m);
  });

  it('lists bans newest first, as text and as JSON, whatever order the store keeps them in', async () => {
    // Made oldest first with the shortest ban: the store's order by end would list them the other way.
    const made: number[] = [];
    for (const [client, duration] of [
      ['203.0.113.41', '1h'],
      ['203.0.113.42', '2h'],
      ['203.0.113.43', '3h'],
    ] as const) {
      const last = made.at(-1) ?? 0;
      await until(() => Date.now() > last, { within: 1000 }); // distinct start times
      made.push((await keeper.ban(client, { duration })).startMs);
    }
    const ours = (clients: string[]) => clients.filter((c) => c.startsWith('203.0.113.4'));
    const json = JSON.parse((await cli(['bans', '--json', ...R])).stdout) as Array<{ client: string }>;
    assert.deepEqual(ours(json.map((b) => b.client)), ['203.0.113.43', '203.0.113.42', '203.0.113.41']);
    const text = (await cli(['bans', ...R])).stdout.split('\n').map((l) => l.split(/\s+/)[0] ?? '');
    assert.deepEqual(ours(text), ['203.0.113.43', '203.0.113.42', '203.0.113.41']);
    for (const client of ['203.0.113.41', '203.0.113.42', '203.0.113.43']) await keeper.unban(client);
  });

  it('shows the jails with failing and banned clients, in a table and as JSON', async () => {
    for (let i = 0; i < 5; i++)
      await keeper.observe({
        client: '198.51.100.31',
        method: 'POST',
        path: '/login',
        route: '/login',
        status: 401,
      });
    await keeper.observe({
      client: '198.51.100.32',
      method: 'POST',
      path: '/login',
      route: '/login',
      status: 401,
    });
    const status = JSON.parse((await cli(['status', '--json', ...R])).stdout);
    assert.equal(status.store, 'redis');
    assert.deepEqual(status.jails.login.bannedClients, ['198.51.100.31']);
    assert.equal(status.jails.login.currentlyFailed, 1);
    const one = await cli(['status', 'login', ...R]);
    assert.match(one.stdout, /Status for the jail: login/);
    assert.match(one.stdout, /Banned list:\s+198\.51\.100\.31/);
    const none = await cli(['status', 'nope', ...R]);
    assert.equal(none.code, 5);
    assert.match(none.stderr, /no jail "nope"/);
  });

  it('unbans one address (the keeper lets it in again), then all', async () => {
    const res = await cli(['unban', '198.51.100.31', ...R]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /Lifted 1 ban\(s\): 198\.51\.100\.31 \(login\)/);
    await until(() => !keeper.check('198.51.100.31').banned, { within: 5000 });
    const again = await cli(['unban', '198.51.100.31', ...R]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /was not banned/);
    await cli(['ban', '203.0.113.22', ...R]);
    const all = JSON.parse((await cli(['unban', '--all', '--json', ...R])).stdout) as Array<{
      client: string;
    }>;
    assert.ok(all.some((b) => b.client === '203.0.113.22'));
    assert.deepEqual(JSON.parse((await cli(['bans', '--json', ...R])).stdout), []);
    await until(() => !keeper.check('203.0.113.22').banned && !keeper.check('203.0.113.21').banned, {
      within: 5000,
    });
  });

  it('edits the shared ignore list: the keeper follows, and an ignored client cannot be banned', async () => {
    const add = await cli(['ignore', 'add', '192.0.2.0/24', ...R]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /Added 192\.0\.2\.0\/24/);
    await until(() => keeper.ignore.has('192.0.2.77'), { within: 5000 });
    assert.deepEqual(JSON.parse((await cli(['ignore', 'list', '--json', ...R])).stdout), ['192.0.2.0/24']);
    const refused = await cli(['ban', '192.0.2.77', ...R]);
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /JK_ERR_IGNORED_CLIENT/);
    const remove = await cli(['ignore', 'remove', '192.0.2.0/24', ...R]);
    assert.match(remove.stdout, /Removed 192\.0\.2\.0\/24/);
    await until(() => !keeper.ignore.has('192.0.2.77'), { within: 5000 });
    // an ignored IPv6 address cannot be banned through its /64 either, as in the engine
    await cli(['ignore', 'add', '2001:db8:7::1', ...R]);
    const v6 = await cli(['ban', '2001:db8:7::1', ...R]);
    assert.equal(v6.code, 5, v6.stdout);
    assert.match(v6.stderr, /JK_ERR_IGNORED_CLIENT/);
    await cli(['ignore', 'remove', '2001:db8:7::1', ...R]);
    const bad = await cli(['ignore', 'add', '10.0.0.1/8', ...R]);
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /JK_ERR_INVALID_CIDR.*did you mean 10\.0\.0\.0\/8/);
  });

  it('exports for the edge, once and with --watch keeping a file current', async () => {
    await cli(['ban', '203.0.113.40', '--for', '1h', ...R]);
    const geo = await cli(['export', '--format', 'nginx-geo', ...R]);
    assert.equal(geo.code, 0, geo.stderr);
    assert.match(geo.stdout, /^geo \$jailkeeper_banned \{$/m);
    assert.match(geo.stdout, /^ {2}203\.0\.113\.40 1;$/m);

    const dir = await mkdtemp(join(tmpdir(), 'jk-export-'));
    const file = join(dir, 'banned.conf');
    const hookFile = join(dir, 'reloads');
    const watcher: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        'export',
        '--format',
        'plain',
        '--out',
        file,
        '--watch',
        '--interval',
        '30s',
        '--exec',
        `echo reload >> ${hookFile}`,
        ...R,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      await until(async () => (await readFile(file, 'utf8').catch(() => '')).includes('203.0.113.40'));
      await cli(['ban', '203.0.113.41', ...R]);
      await until(async () => (await readFile(file, 'utf8').catch(() => '')).includes('203.0.113.41'), {
        within: 3000,
      });
      await cli(['unban', '203.0.113.40', ...R]);
      await until(async () => !(await readFile(file, 'utf8')).includes('203.0.113.40'), { within: 3000 });
      // the hook runs after each write: wait for the third, then make sure no fourth follows
      const reloads = async () =>
        (await readFile(hookFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
      await until(async () => (await reloads()) >= 3, { within: 3000 });
      // A fourth change is the event after which a duplicate run of an earlier hook would show.
      await cli(['ban', '203.0.113.42', ...R]);
      await until(async () => (await readFile(file, 'utf8').catch(() => '')).includes('203.0.113.42'), {
        within: 3000,
      });
      await until(async () => (await reloads()) >= 4, { within: 3000 });
      assert.equal(await reloads(), 4, 'the hook ran once per change');
    } finally {
      watcher.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((resolve) => watcher.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, 'export --watch stops cleanly on SIGTERM');
    await rm(dir, { recursive: true });
    await cli(['unban', '--all', ...R]);
  });

  it('says what is wrong with the arguments, with exit code 2, before connecting', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /Usage: jailkeeper/],
      [['frobnicate', ...R], /Unknown command "frobnicate"/],
      [['ban', ...R], /Usage: jailkeeper ban <ip>/],
      [['ban', '1.2.3.4', '--for', 'soon', ...R], /--for must be a duration/],
      [
        ['ban', '1.2.3.4', '--for', 'soon', '--url', 'http://127.0.0.1:1/x', '--token', 't'],
        /--for must be a duration/,
      ],
      [['bans', '--colour', ...R], /Unknown option '--colour'/],
      [['unban', ...R], /or --all/],
      [['ignore', 'purge', ...R], /ignore add\|remove/],
      [['export', ...R], /export needs --format/],
      [['export', '--format', 'csv', ...R], /export needs --format, one of plain, json/],
      [['export', '--format', 'plain', '--watch', ...R], /--watch needs --out/],
      [['bans'], /Say where the bans are/],
      [['bans', '--url', 'http://127.0.0.1:1/x'], /--url needs the admin token/],
    ];
    for (const [args, message] of cases) {
      const res = await cli(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr + res.stdout, message, args.join(' '));
    }
  });

  it('refuses what is not one client, with exit code 5 and the code', async () => {
    for (const [address, code] of [
      ['not-an-ip', 'JK_ERR_INVALID_IP'],
      ['203.0.113.0/24', 'JK_ERR_INVALID_IP'],
      ['01.2.3.4', 'JK_ERR_INVALID_IP'],
    ]) {
      const res = await cli(['ban', address as string, ...R]);
      assert.equal(res.code, 5, address);
      assert.match(res.stderr, new RegExp(code as string));
    }
    const range = await cli(['ban', '203.0.113.0/24', ...R]);
    assert.match(range.stderr, /wider than one client/);
  });

  it('refuses an unknown jail as --url does (exit 5): the jails are those the running keepers registered, or --config', async () => {
    const typo = await cli(['ban', '203.0.113.25', '--jail', 'logn', ...R]);
    assert.equal(typo.code, 5, typo.stdout);
    assert.match(typo.stderr, /JK_ERR_UNKNOWN_JAIL.*"logn".*login, manual/);
    assert.equal(keeper.check('203.0.113.25').banned, false, 'nothing was written');
    const unban = await cli(['unban', '203.0.113.25', '--jail', 'logn', ...R]);
    assert.equal(unban.code, 5);
    // The running keeper registered "login" in Redis at start.
    const known = await cli(['ban', '203.0.113.25', '--jail', 'login', '--for', '10m', ...R]);
    assert.equal(known.code, 0, known.stderr);
    await until(() => keeper.check('203.0.113.25').banned, { within: 5000 });
    await cli(['unban', '203.0.113.25', ...R]);
  });

  it('reports an unreachable Redis with exit code 3 and what to check', async () => {
    const port = await freePort();
    const res = await cli(['bans', '--redis', `redis://127.0.0.1:${port}`]);
    assert.equal(res.code, 3);
    assert.match(
      res.stderr,
      new RegExp(`Cannot reach Redis at redis://127\\.0\\.0\\.1:${port}.*--redis \\(or REDIS_URL\\)`),
    );
    const viaEnv = await cli(['bans'], { REDIS_URL: `redis://127.0.0.1:${port}` });
    assert.equal(viaEnv.code, 3);
  });
});

describe('jailkeeper CLI against a running example app', () => {
  let app: ChildProcess;
  let adminUrl: string;
  let appUrl: string;

  before(async () => {
    app = spawn(process.execPath, [APP], {
      env: { ...process.env, PORT: '0', JAILKEEPER_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      app.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (http:\/\/[^;]+);/.exec(out);
        if (m) {
          appUrl = m[1] as string;
          resolve();
        }
      });
      app.once('exit', (code) => reject(new Error(`the app exited with ${code}`)));
    });
    adminUrl = `${appUrl}/_jailkeeper`;
  });
  after(() => {
    app.kill('SIGTERM');
  });

  const A = () => ['--url', adminUrl, '--token', TOKEN];

  function post(localAddress: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const r = request(
        `${appUrl}/login`,
        { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      r.on('error', reject);
      r.end('{"user":"alice","password":"nope"}');
    });
  }

  it('lists, bans (the app refuses the client), shows status and unbans through the admin API', async () => {
    assert.deepEqual(JSON.parse((await cli(['bans', '--json', ...A()])).stdout), []);
    assert.equal(await post('127.0.0.5'), 401);
    const ban = await cli(['ban', '127.0.0.5', '--jail', 'login', '--for', '10m', '--json', ...A()]);
    assert.equal(ban.code, 0, ban.stderr);
    assert.equal(JSON.parse(ban.stdout).jail, 'login');
    assert.equal(await post('127.0.0.5'), 403);
    const status = JSON.parse((await cli(['status', '--json', ...A()])).stdout);
    assert.deepEqual(status.jails.login.bannedClients, ['127.0.0.5']);
    assert.equal(status.jails.login.totalFailed, 1, 'the app counted the first failure');
    const unban = await cli(['unban', '127.0.0.5', ...A()]);
    assert.equal(unban.code, 0);
    assert.equal(await post('127.0.0.5'), 401);
  });

  it('goes through the same refusals as the library: the admin address, unknown jails', async () => {
    const admin = await cli(['ban', '127.0.0.1', ...A()]);
    assert.equal(admin.code, 5);
    assert.match(admin.stderr, /ignore list/);
    const jail = await cli(['ban', '127.0.0.6', '--jail', 'nope', ...A()]);
    assert.equal(jail.code, 5);
    assert.match(jail.stderr, /no jail "nope"/);
  });

  it('ignore add/list/remove and export work through the admin API too', async () => {
    await cli(['ignore', 'add', '198.51.100.0/24', ...A()]);
    assert.ok(
      JSON.parse((await cli(['ignore', 'list', '--json', ...A()])).stdout).includes('198.51.100.0/24'),
    );
    await cli(['ignore', 'remove', '198.51.100.0/24', ...A()]);
    assert.ok(
      !JSON.parse((await cli(['ignore', 'list', '--json', ...A()])).stdout).includes('198.51.100.0/24'),
    );
    await cli(['ban', '127.0.0.7', ...A()]);
    const ipset = await cli(['export', '--format', 'ipset', ...A()]);
    assert.match(ipset.stdout, /^add jailkeeper 127\.0\.0\.7$/m);
    const json = JSON.parse((await cli(['export', '--format', 'json', ...A()])).stdout);
    assert.deepEqual(
      json.map((b: { client: string }) => b.client),
      ['127.0.0.7'],
    );
    await cli(['unban', '--all', ...A()]);
  });

  it('a refused token is exit code 4 with what to do; a wrong path or a stopped app is 3', async () => {
    const refused = await cli(['bans', '--url', adminUrl, '--token', 'not-the-token-at-all']);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /refused the token.*--token or JAILKEEPER_TOKEN/);
    const viaEnv = await cli(['bans', '--url', adminUrl], { JAILKEEPER_TOKEN: TOKEN });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const wrongPath = await cli(['bans', '--url', `${appUrl}/nope`, '--token', TOKEN]);
    assert.equal(wrongPath.code, 3);
    assert.match(wrongPath.stderr, /is the admin API mounted at this path/);
    const port = await freePort();
    const stopped = await cli(['bans', '--url', `http://127.0.0.1:${port}/_jailkeeper`, '--token', TOKEN]);
    assert.equal(stopped.code, 3);
    assert.match(stopped.stderr, /Cannot reach the admin API.*Is the app running/);
  });
});
