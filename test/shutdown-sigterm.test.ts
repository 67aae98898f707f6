/**
 * Issue 26, a shutdown that loses nothing: a real app process gets SIGTERM while login guesses are
 * in flight (their handlers still running). Its handler closes the server, then the keeper, then
 * exits. Ground truth: the handlers' own runs, and after a restart on the same store, every ban
 * those guesses made and every failure they counted is there. Memory store (persist) and Redis.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, createMemoryStore, type Store } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from './redis-server.js';

const app = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'sigterm-app.mjs');
const BANNED = 20; // clients that send maxRetry (3) guesses at once: 60 failures, 20 bans
const COUNTING = 10; // clients that send one guess: a failure each, no ban
const dir = mkdtempSync(join(tmpdir(), 'jk-sigterm-'));
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

const banned = (i: number) => `198.51.100.${i + 1}`;
const counting = (i: number) => `198.51.100.${100 + i}`;

function guess(port: number, client: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/login', method: 'POST', headers: { 'x-forwarded-for': client } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Runs the app, sends every guess, SIGTERMs it once every handler has started; returns what it saw. */
async function shutDownInFlight(args: string[]) {
  const child: ChildProcess = fork(app, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let started = 0;
  const expected = BANNED * 3 + COUNTING;
  let onAllStarted: () => void = () => {};
  const allStarted = new Promise<void>((resolve) => {
    onAllStarted = resolve;
  });
  let closed: { dropped?: number } | undefined;
  const port = await new Promise<number>((resolve) => {
    child.on('message', (m: { port?: number; started?: boolean; closed?: boolean; dropped?: number }) => {
      if (m.port !== undefined) resolve(m.port);
      if (m.started && ++started === expected) onAllStarted();
      if (m.closed) closed = m;
    });
  });
  const answers = Promise.all([
    ...Array.from({ length: BANNED }, (_, i) => [0, 1, 2].map(() => guess(port, banned(i)))).flat(),
    ...Array.from({ length: COUNTING }, (_, i) => guess(port, counting(i))),
  ]);
  await allStarted;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const statuses = await answers;
  const [code] = await exited;
  return { statuses, code, closed, started };
}

async function assertEverythingKept(store: Store, cleanup: () => Promise<void>) {
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, findTime: '10m', banTime: '1h' } },
    store,
    logger: quietLogger,
  });
  await keeper.ready;
  const missing = Array.from({ length: BANNED }, (_, i) => banned(i)).filter((c) => !keeper.check(c).banned);
  assert.deepEqual(missing, [], 'bans lost in the shutdown');
  const status = (await keeper.status()).jails.login;
  assert.equal(status?.currentlyBanned, BANNED);
  assert.equal(status?.currentlyFailed, COUNTING, 'failures lost in the shutdown');
  for (let i = 0; i < COUNTING; i++) assert.equal(keeper.check(counting(i)).banned, false);
  await keeper.close();
  await cleanup();
}

describe('SIGTERM with guesses in flight: every ban and failure is there after the restart', () => {
  it('memory store with persist', async () => {
    const file = join(dir, 'bans.json');
    const run = await shutDownInFlight(['memory', file]);
    assert.equal(run.started, BANNED * 3 + COUNTING, 'every handler ran');
    assert.ok(
      run.statuses.every((s) => s === 401),
      `answers: ${run.statuses.join()}`,
    );
    assert.equal(run.code, 0);
    assert.equal(run.closed?.dropped, 0);
    await assertEverythingKept(createMemoryStore({ persist: file }), async () => {});
  });

  it('Redis store', async () => {
    const prefix = `jksigterm${process.pid}:`;
    const run = await shutDownInFlight(['redis', redis.url, prefix]);
    assert.equal(run.started, BANNED * 3 + COUNTING, 'every handler ran');
    assert.ok(
      run.statuses.every((s) => s === 401),
      `answers: ${run.statuses.join()}`,
    );
    assert.equal(run.code, 0);
    assert.equal(run.closed?.dropped, 0);
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    await assertEverythingKept(createRedisStore({ client, prefix, timeout: 2000 }), async () => {
      await client.quit();
    });
  });
});
