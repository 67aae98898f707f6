/**
 * The attack matrix: each attack class is a table of rows, run on every framework and store.
 * A row passes when, in every repetition, the login handler ran at most maxRetry times for the
 * attacker (counted by the handler itself), the attack reached it at all, and the client ended
 * up banned on every instance.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { until } from '@jailkeeper/core/testing';
import { NO_REDIS } from '../needs.js';
import {
  AT_ONCE,
  deploy,
  type Fleet,
  FRAMEWORKS,
  LOGIN_JAIL,
  MEMORY_REPEAT,
  REDIS_REPEAT,
  STORES,
} from './fleet.js';
import { type AttackResult, freshClient } from './traffic.js';

export interface AttackRow {
  readonly name: string;
  /**
   * False when the attempts may never reach the handler (their client leaves before the body is
   * read): the row then proves only that they counted, by the ban.
   */
  readonly reachesHandler?: boolean;
  /** Sends the attack from `client` to the instances' ports; resolves when the attacker is done. */
  attack(ports: readonly number[], client: string, fleet: Fleet): Promise<AttackResult>;
}

/** The most handler runs seen in any repetition, per row, for the closing summary of each file. */
const figures: string[] = [];

function tally(statuses: readonly number[]): string {
  const counts = new Map<number, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n}×${s}`).join(' ') || 'none';
}

/** Runs `rows` on every framework and store, under `title`. */
export function attackMatrix(title: string, rows: readonly AttackRow[]): void {
  describe(title, () => {
    after(() => {
      if (figures.length > 0) console.log(`# ${title}: max handler runs per row\n${figures.join('\n')}`);
    });
    for (const framework of FRAMEWORKS) {
      for (const store of STORES) {
        describe(`${framework.name}, ${store.name}`, { skip: (store.redis && NO_REDIS) || false }, () => {
          let fleet: Fleet;
          before(async () => {
            fleet = await deploy(framework, store, { jails: { login: LOGIN_JAIL } });
          });
          after(() => fleet.close());
          const repeat = store.redis ? REDIS_REPEAT : MEMORY_REPEAT;
          for (const row of rows) {
            it(`${row.name}: at most ${LOGIN_JAIL.maxRetry} handler runs, ${repeat} times`, {}, async (t) => {
              let most = 0;
              let least = Number.POSITIVE_INFINITY;
              const started = Date.now();
              try {
                for (let run = 0; run < repeat; run += AT_ONCE) {
                  // Repetitions side by side: each attacker is its own client, so they are independent.
                  const clients = Array.from({ length: Math.min(AT_ONCE, repeat - run) }, freshClient);
                  const ports = fleet.instances.map((i) => i.port);
                  const results = await Promise.all(
                    clients.map((client) => row.attack(ports, client, fleet)),
                  );
                  await fleet.settle();
                  for (const [i, client] of clients.entries()) {
                    const result = results[i] as AttackResult;
                    const runs = fleet.probe.runsOf(client);
                    most = Math.max(most, runs);
                    least = Math.min(least, runs);
                    const seen = `run ${run + i + 1}/${repeat}: ${runs} handler runs of ${result.sent} attempts; answers ${tally(result.statuses)}`;
                    assert.equal(result.timedOut, 0, `${seen}; ${result.timedOut} connections never closed`);
                    assert.ok(runs <= LOGIN_JAIL.maxRetry, `${seen} (maxRetry ${LOGIN_JAIL.maxRetry})`);
                    if (row.reachesHandler !== false) {
                      assert.ok(runs >= 1, `${seen}: the attack never reached the handler`);
                    }
                    // Every admitted attempt failed (or was abandoned): the client is banned everywhere.
                    await until(() => fleet.bannedEverywhere(client), {
                      within: 3000,
                      what: `${seen}: a ban on every instance`,
                    });
                  }
                  // Every admitted response was counted (its slots settled), none left open.
                  await fleet.idle();
                }
              } finally {
                const line = `${framework.name}, ${store.name}, ${row.name}: max ${most}, min ${least === Number.POSITIVE_INFINITY ? '-' : least} handler runs in ${repeat} runs (${Date.now() - started} ms)`;
                figures.push(line);
                t.diagnostic(line);
              }
            });
          }
        });
      }
    }
  });
}
