/**
 * Admission when the store cannot answer: a `reserve` that fails (a slow store that missed its
 * deadline, a dead one) must not admit the attempt blindly. The instance counts it itself: at most
 * maxRetry attempts per client and jail within findTime, the rest refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { internalsOf } from '../src/engine/internals.js';
import { createJailkeeper } from '../src/index.js';
import { createMemoryStore } from '../src/store/memory-store.js';
import { quietLogger } from '../src/testing/index.js';

describe('admission while the store fails', () => {
  it('admits at most maxRetry attempts of a client per instance, never every one', async () => {
    const store = createMemoryStore();
    let fail = true;
    const reserve = store.reserve?.bind(store);
    assert.ok(reserve);
    store.reserve = (...args) => (fail ? Promise.reject(new Error('deadline missed')) : reserve(...args));
    const keeper = createJailkeeper({
      store,
      logger: quietLogger,
      jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 5 } },
    });
    await keeper.ready;
    const admitter = internalsOf(keeper)?.admitter;
    assert.ok(admitter);
    const targets = admitter.targets('POST', '/login', false);
    assert.equal(targets.length, 1);
    const attacker = keeper.identify('198.51.100.7');
    const other = keeper.identify('198.51.100.8');
    assert.ok(attacker && other);
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => admitter.admit(attacker, targets, false)),
    );
    assert.equal(answers.filter((a) => a.admitted).length, 5, 'the burst buys maxRetry, not 200');
    // Another client keeps its own budget; the store answering again is used again.
    assert.equal((await admitter.admit(other, targets, false)).admitted, true);
    fail = false;
    assert.equal(
      (await admitter.admit(keeper.identify('198.51.100.9') as typeof other, targets, false)).admitted,
      true,
    );
    await keeper.close();
  });
});

describe('owners of accounts', () => {
  it('are evicted by their last login, not their first', async () => {
    const { OwnerBook } = await import('../src/engine/owners.js');
    const { createManualClock } = await import('../src/operator/index.js');
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { account: { key: 'account', statuses: [401], paths: ['/login'], methods: ['POST'] } },
    });
    const jail = keeper.options.jailsByName.get('account');
    assert.ok(jail);
    const book = new OwnerBook(createManualClock(0), 10);
    book.add(jail, 'acct:alice', '10.0.0.1');
    for (let i = 0; i < 5; i++) book.add(jail, `acct:u${i}`, '10.0.1.1');
    book.add(jail, 'acct:alice', '10.0.0.1'); // alice logs in again
    for (let i = 5; i < 12; i++) book.add(jail, `acct:u${i}`, '10.0.1.1');
    assert.equal(book.isOwner('account', 'acct:alice', '10.0.0.1'), true, 'a regular owner stays');
    await keeper.close();
  });
});
