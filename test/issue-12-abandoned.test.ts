/**
 * Issue 12, abandoned attempts: an attempt whose client leaves before its answer counts as a
 * failure, however it was sent. Regression: Node emits no 'close' on a response queued behind a
 * pipelined one when the connection dies, nor on one whose client left while it waited for a
 * slot; the adapters listened only for that event, so such attempts ran their handler, were never
 * counted, and held their slots until `attempts.hold` ran out: then the attacker had a fresh
 * budget, and a pipelined write abandoned at once bought maxRetry handler runs per hold.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createManualClock, until } from '@jailkeeper/core/testing';
import { deploy, type Fleet, FRAMEWORKS, LOGIN_JAIL, STORES } from './attacks/fleet.js';
import { freshClient, pipelined } from './attacks/traffic.js';

const HOLD_MS = 300;
const CYCLES = 3;
const memory = STORES.find((s) => !s.redis) as (typeof STORES)[number];

for (const framework of FRAMEWORKS) {
  describe(`issue 12, ${framework.name}: attempts abandoned on a pipelined connection`, () => {
    const clock = createManualClock(Date.now());
    let fleet: Fleet;
    before(async () => {
      fleet = await deploy(framework, memory, {
        jails: { login: LOGIN_JAIL },
        clock,
        // No wait: an attempt beyond the budget is refused at once, so each burst ends by itself.
        attempts: { hold: HOLD_MS, wait: 0 },
      });
    });
    after(() => fleet.close());

    it(`${CYCLES} bursts of 200 pipelined guesses, each abandoned 5 ms after the write, the holds run out in between: at most ${LOGIN_JAIL.maxRetry} handler runs, then a ban`, async () => {
      const client = freshClient();
      const ports = fleet.instances.map((i) => i.port);
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        await pipelined(ports, client, 200, 5);
        await fleet.settle();
        // The responses close as the client leaves, 5 ms after the write: wait for them to be
        // counted (without the fix some never are, and the next burst shows it).
        await fleet.idle(2000).catch(() => {});
        // Any slot left unsettled has expired now.
        clock.advance(HOLD_MS + 1);
      }
      const runs = fleet.probe.runsOf(client);
      assert.ok(runs <= LOGIN_JAIL.maxRetry, `${runs} handler runs over ${CYCLES} bursts`);
      await until(() => fleet.bannedEverywhere(client), { within: 1000, what: 'the ban' });
      await fleet.idle(); // every admitted response was counted
    });
  });
}
