import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  type BanEvent,
  createJailkeeper,
  createMemoryStore,
  type JailkeeperOptions,
  type ObserveResult,
  type Verdict,
} from '../src/index.js';

// Checked by `tsc -p tsconfig.test.json`: each @ts-expect-error fails the typecheck if the
// public types ever accept what they must refuse.
const options: JailkeeperOptions = {
  jails: {
    login: { statuses: [401], paths: ['/login', /^\/admin/], findTime: '10m', banTime: -1, scope: 'jail' },
    bots: { userAgents: [/sqlmap/, 'nikto'], banTime: 'permanent' },
  },
  ignoreIp: ['127.0.0.0/8', 'private'],
  recidive: { maxRetry: 3 },
};
// @ts-expect-error jails is required
const missing: JailkeeperOptions = {};
// @ts-expect-error scope is 'app' or 'jail'
const badScope: JailkeeperOptions = { jails: { a: { statuses: [401], scope: 'route' } } };
// @ts-expect-error fail2ban spellings are not options
const spelled: JailkeeperOptions = { jails: { a: { statuses: [401], maxretry: 3 } } };
// @ts-expect-error a store is an object with the store methods
const badStore: JailkeeperOptions = { jails: { a: { statuses: [401] } }, store: 'redis' };

it('public types describe what the engine returns', async () => {
  const keeper = createJailkeeper({ ...options, store: createMemoryStore() });
  const verdict: Verdict = keeper.check('1.2.3.4');
  if (verdict.banned) {
    const until: number = verdict.untilMs;
    assert.ok(until > 0);
  }
  const result: ObserveResult = await keeper.observe({
    client: '1.2.3.4',
    method: 'GET',
    path: '/',
    status: 200,
  });
  assert.equal(result.ignored, null);
  keeper.on('ban', (event: BanEvent) => {
    const origin: 'local' | 'remote' | 'restored' = event.origin;
    assert.ok(origin);
  });
  // @ts-expect-error an unknown event name
  keeper.on('banned', () => {});
  await keeper.close();
  assert.ok([missing, badScope, spelled, badStore].length === 4);
});
