// test-run: alone (no instance may miss the store's 100 ms deadline: the machine is its own)
/**
 * The attacker's burst against a fleet in separate processes (issue 25): three app instances, each
 * in its own process with its own event loop and its own Redis connection, on one Redis, the store
 * at its default 100 ms deadline and an 80 ms handler. One address pipelines 200 guesses in one
 * write to each instance (and 900 to each Fastify instance): the login handler runs at most
 * maxRetry (5) times in all, counted by the handlers, and no instance goes degraded: the
 * attacker's own traffic must not push the store past its deadline.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../redis-server.js';
import { LOGIN_JAIL, REDIS_REPEAT } from './fleet.js';
import { freshClient, pipelined } from './traffic.js';

const here = dirname(fileURLToPath(import.meta.url));
const INSTANCES = 3;

interface Answer {
  runs: number;
  banned: boolean;
  storeDowns: number;
  reasons: string[];
  degraded: boolean;
  error?: string;
}

/** One instance in its own process (fleet-process.ts). */
class Instance {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (answer: Answer) => void>();
  #next = 0;
  readonly port: Promise<number>;

  constructor(framework: string, url: string, prefix: string) {
    this.#child = fork(join(here, 'fleet-process.ts'), [framework, url, prefix], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, JK_FLEET_CHECK_MS: '80' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.port = new Promise((resolve, reject) => {
      this.#child.once('exit', (code) => reject(new Error(`instance exited (${code}) before it was ready`)));
      this.#child.on('message', (m: { ready?: boolean; port?: number; id?: number } & Answer) => {
        if (m.ready) return resolve(m.port as number);
        this.#pending.get(m.id as number)?.(m);
        this.#pending.delete(m.id as number);
      });
    });
  }

  /** The handler runs of `client` here, once every request this instance received is decided. */
  runs(client: string): Promise<Answer> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.send({ op: 'runs', id, client });
    });
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.send({ op: 'exit', id: -1 });
    await exited;
  }
}

let redis: TestRedis;
let admin: Redis;
before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
after(async () => {
  admin.disconnect();
  await redis.stop();
});

/** Script calls Redis has run so far (EVAL and EVALSHA, from INFO commandstats). */
async function scriptCalls(): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

const ROWS = [
  { framework: 'express 5', guesses: 200 },
  { framework: 'fastify 5', guesses: 200 },
  { framework: 'fastify 5', guesses: 900 },
];

for (const row of ROWS) {
  describe(`${row.framework}, ${INSTANCES} instances in ${INSTANCES} processes, one Redis`, () => {
    let instances: Instance[];
    let ports: number[];
    before(async () => {
      const prefix = `jkpf${process.pid}-${row.guesses}-${row.framework.replace(/\W/g, '')}:`;
      instances = Array.from({ length: INSTANCES }, () => new Instance(row.framework, redis.url, prefix));
      ports = await Promise.all(instances.map((i) => i.port));
    });
    after(() => Promise.all(instances.map((i) => i.stop())));

    it(`${row.guesses} guesses pipelined to each instance: at most ${LOGIN_JAIL.maxRetry} handler runs, no instance degraded, ${REDIS_REPEAT} times`, async () => {
      let most = 0;
      const calls: number[] = [];
      for (let run = 1; run <= REDIS_REPEAT; run++) {
        const client = freshClient();
        const callsBefore = await scriptCalls();
        const result = await pipelined(ports, client, row.guesses);
        const answers = await Promise.all(instances.map((i) => i.runs(client)));
        calls.push((await scriptCalls()) - callsBefore);
        for (const a of answers) assert.equal(a.error, undefined, a.error);
        const runs = answers.reduce((sum, a) => sum + a.runs, 0);
        most = Math.max(most, runs);
        const downs = answers.flatMap((a) => a.reasons);
        const seen = `run ${run}/${REDIS_REPEAT}: ${runs} handler runs (${answers.map((a) => a.runs).join('+')}) of ${result.sent} guesses${downs.length > 0 ? `; store down: ${downs.join(', ')}` : ''}`;
        assert.equal(result.timedOut, 0, `${seen}; ${result.timedOut} connections never closed`);
        assert.ok(runs >= 1, `${seen}: the attack never reached a handler`);
        assert.ok(runs <= LOGIN_JAIL.maxRetry, `${seen} (maxRetry ${LOGIN_JAIL.maxRetry})`);
        assert.deepEqual(
          answers.map((a) => a.storeDowns),
          answers.map(() => 0),
          `${seen}: an instance went degraded (store down) under the burst`,
        );
        assert.ok(!answers.some((a) => a.degraded), `${seen}: an instance is degraded`);
        assert.ok(
          answers.every((a) => a.banned),
          `${seen}: the client is not banned on every instance`,
        );
      }
      console.log(
        `# ${row.framework} × ${row.guesses}: at most ${most} handler runs in ${REDIS_REPEAT} runs; ` +
          `script calls a run (all instances, reads included): mean ${(calls.reduce((a, b) => a + b, 0) / calls.length).toFixed(1)}, ` +
          `max ${Math.max(...calls)}`,
      );
    });
  });
}
