/**
 * App-wide jails (statuses only: any 403 anywhere). Holding every request of every client would
 * slow browsers that load twenty assets at once, so a client takes slots there only from its first
 * counted failure on (on the instance that counted it). The bound, measured here:
 *
 *   handler runs ≤ B + (maxRetry − 1)
 *
 * where B is the requests the instance let through before it counted the client's first failure
 * there (they took no slot). A burst sent all at once is all of B; after one counted failure, any
 * burst gets at most maxRetry − count handler runs. See docs/security.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { until } from '@jailkeeper/core/testing';
import { NO_REDIS } from '../needs.js';
import { deploy, type Fleet, FRAMEWORKS, STORES } from './fleet.js';
import { freshClient, parallelGet, streamGet } from './traffic.js';

const MAX_RETRY = 2;
const BURST = 100;
const REPEAT = 3;
const figures: string[] = [];

describe('an app-wide jail (any 403, maxRetry 2)', () => {
  after(() => {
    if (figures.length > 0) console.log(`# app-wide jail: handler runs\n${figures.join('\n')}`);
  });
  for (const framework of FRAMEWORKS) {
    for (const store of STORES) {
      describe(`${framework.name}, ${store.name}`, { skip: (store.redis && NO_REDIS) || false }, () => {
        let fleet: Fleet;
        before(async () => {
          fleet = await deploy(framework, store, {
            jails: { forbidden: { statuses: [403], maxRetry: MAX_RETRY } },
          });
        });
        after(() => fleet.close());
        const note = (line: string) => figures.push(`${framework.name}, ${store.name}: ${line}`);

        it(`after one counted failure, ${BURST} parallel requests to that instance: at most ${MAX_RETRY - 1} more handler run`, {}, async () => {
          const most: number[] = [];
          for (let run = 0; run < REPEAT; run++) {
            const client = freshClient();
            const first = fleet.instances[0]?.port as number;
            const one = await parallelGet([first], client, 1, '/admin');
            assert.deepEqual(one.statuses, [403]);
            await fleet.settle();
            await fleet.idle(); // the failure is counted: from now on the client takes slots there
            const burst = await parallelGet([first], client, BURST, '/admin');
            await fleet.settle();
            const more = fleet.probe.hitsOf(client, 'admin') - 1;
            most.push(more);
            assert.ok(
              more <= MAX_RETRY - 1,
              `run ${run + 1}: ${more} more handler runs; answers ${burst.statuses}`,
            );
            await until(() => fleet.bannedEverywhere(client), { within: 3000, what: 'the ban' });
          }
          note(`after 1 counted failure, ${BURST} parallel: at most ${Math.max(...most)} more run(s)`);
        });

        for (const burst of [2, 10, BURST]) {
          it(`a fresh client's burst of ${burst} parallel requests: it runs whole (B = ${burst}), then the client is banned`, {}, async () => {
            const seen: number[] = [];
            for (let run = 0; run < REPEAT; run++) {
              const client = freshClient();
              const ports = fleet.instances.map((i) => i.port);
              await parallelGet(ports, client, burst, '/admin');
              await fleet.settle();
              const runs = fleet.probe.hitsOf(client, 'admin');
              seen.push(runs);
              // The bound: B (here the whole burst, sent before any failure was counted) + maxRetry − 1.
              assert.ok(runs <= burst + MAX_RETRY - 1);
              await until(() => fleet.bannedEverywhere(client), { within: 3000, what: 'the ban' });
              // Banned: the next burst runs nothing.
              await parallelGet(ports, client, burst, '/admin');
              await fleet.settle();
              assert.equal(
                fleet.probe.hitsOf(client, 'admin'),
                runs,
                `run ${run + 1}: a burst after the ban`,
              );
            }
            note(
              `fresh burst of ${burst} parallel: ${Math.min(...seen)} to ${Math.max(...seen)} handler runs`,
            );
          });
        }

        it('a steady stream (one request a millisecond, 200 in all): B is what arrives before the first failure is counted', {}, async () => {
          const seen: string[] = [];
          for (let run = 0; run < REPEAT; run++) {
            const client = freshClient();
            const ports = fleet.instances.map((i) => i.port);
            const stream = await streamGet(ports, client, 200, 1, '/admin');
            await fleet.settle();
            const runs = fleet.probe.hitsOf(client, 'admin');
            // Requests sent after the first answer reached the client arrive after the failure was
            // counted (with the memory store): they take slots.
            const bound = stream.sentBeforeFirstAnswer + MAX_RETRY - 1;
            seen.push(`${runs} (${stream.sentBeforeFirstAnswer} sent before the first answer)`);
            if (!store.redis)
              assert.ok(runs <= bound, `run ${run + 1}: ${runs} handler runs, bound ${bound}`);
            await until(() => fleet.bannedEverywhere(client), { within: 3000, what: 'the ban' });
          }
          note(`a stream of 200 at 1/ms: handler runs ${seen.join(', ')}`);
        });
      });
    }
  }
});
