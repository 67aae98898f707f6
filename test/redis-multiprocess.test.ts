import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NO_REDIS } from './needs.js';
import { startRedis, type TestRedis } from './redis-server.js';

const worker = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'redis-worker.mjs');
const RUNS = 500;
const FAILURES_PER_RUN = 8; // more than maxRetry (5): some arrive after the ban

let redis: TestRedis;
before(async () => {
  if (NO_REDIS) return;
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

class Worker {
  readonly #child: ChildProcess;
  #next = 0;
  readonly #pending = new Map<number, (value: Record<string, unknown>) => void>();
  readonly ready: Promise<void>;

  constructor(prefix: string) {
    this.#child = fork(worker, [redis.url, prefix], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve) => {
      this.#child.on('message', (m: Record<string, unknown>) => {
        if (m.ready) return resolve();
        this.#pending.get(m.id as number)?.(m);
        this.#pending.delete(m.id as number);
      });
    });
  }

  ask(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.send({ ...message, id });
    });
  }

  async stop(): Promise<void> {
    const exited = once(this.#child, 'exit');
    this.#child.send({ op: 'exit' });
    await exited;
  }
}

for (const processes of [2, 4, 8]) {
  describe(`${processes} app processes on one Redis`, { skip: NO_REDIS }, () => {
    it(`${RUNS} runs of interleaved failures from one client: exactly one ban, by the 5th failure`, async () => {
      const prefix = `jkmp${process.pid}-${processes}:`;
      const workers = Array.from({ length: processes }, () => new Worker(prefix));
      await Promise.all(workers.map((w) => w.ready));
      try {
        for (let run = 0; run < RUNS; run++) {
          const client = `10.${processes}.${run >> 8}.${run & 255}`;
          const pick = () => workers[Math.floor(Math.random() * workers.length)] as Worker;
          const results = await Promise.all(
            Array.from({ length: FAILURES_PER_RUN }, () => pick().ask({ op: 'fail', client })),
          );
          const banned = results.filter((r) => r.action === 'banned');
          assert.equal(banned.length, 1, `run ${run}: ${JSON.stringify(results)}`);
          assert.equal(banned[0]?.count, 5, `run ${run}: banned by the 5th failure`);
          const counted = results.filter((r) => r.action === 'counted').map((r) => r.count as number);
          assert.deepEqual(counted.sort(), [1, 2, 3, 4], `run ${run}: counts 1 to 4 before the ban`);
          assert.equal(results.filter((r) => r.action === 'alreadyBanned').length, FAILURES_PER_RUN - 5);
          // Once propagated, the next request on any instance is refused.
          for (const w of workers) {
            let refused = false;
            for (let i = 0; i < 200 && !refused; i++) {
              refused = (await w.ask({ op: 'check', client })).banned === true;
              if (!refused) await sleep(2);
            }
            assert.ok(refused, `run ${run}: an instance never saw the ban`);
          }
        }
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
    });
  });
}
