import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  type BanEvent,
  createJailkeeper,
  createMemoryStore,
  type Duration,
  type JailkeeperOptions,
  type JailOptions,
  parseDuration,
} from '../src/index.js';
import {
  type BanDuration,
  type DurationString,
  type ObserveResult,
  toBanTimeMs,
  type Verdict,
} from '../src/operator/index.js';

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

// Durations: what the parser reads, the type accepts; a misspelt unit is a compile error.
const durations: Duration[] = [
  600_000,
  '10m',
  '90s',
  '250ms',
  '1d12h',
  '1h 30m',
  '2 days',
  '1.5h',
  '90',
  '1mo',
  '1y',
];
// More parts, or long units in two parts, parse too: the type leaves them out to stay small.
const longer: DurationString[] = ['1w2d3h' as DurationString, '1 hour 30 minutes' as DurationString];
// @ts-expect-error three parts need a cast
const threeParts: Duration = '1w2d3h';
const bans: BanDuration[] = ['permanent', -1, '-1', '1h'];
// @ts-expect-error a misspelt unit: 'mins' is not one
const misspelt: Duration = '10mins';
// @ts-expect-error words are not a duration
const words: Duration = 'ten minutes';
// @ts-expect-error a unit with no number
const unitOnly: Duration = 'm';
// @ts-expect-error 'permanent' is a ban's length, not a window
const permanentWindow: Duration = 'permanent';
// @ts-expect-error in a jail, too
const badFindTime: JailOptions = { statuses: [401], findTime: '10mins' };
// @ts-expect-error and in the global options
const badHistory: JailkeeperOptions = { jails: {}, historyTime: '1 fortnight' };
// A string from a file or the environment is a string: parse it, or cast it and let startup check it.
const fromEnvironment: string = process.env.JK_TYPES_TEST_BAN_TIME ?? '1h';
// @ts-expect-error a plain string is not known to be a duration
const unchecked: Duration = fromEnvironment;
const cast: JailOptions = { statuses: [401], banTime: fromEnvironment as DurationString };
const parsed: Duration | undefined = parseDuration(fromEnvironment);

it('every duration the type accepts in these examples parses', () => {
  for (const d of durations) assert.notEqual(parseDuration(d), undefined, String(d));
  for (const d of longer) assert.notEqual(parseDuration(d), undefined, d);
  assert.equal(parseDuration(threeParts), 788_400_000);
  assert.deepEqual(
    bans.map((b) => toBanTimeMs('banTime', b)),
    [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 3_600_000],
  );
  const refused: unknown[] = [misspelt, words, unitOnly, permanentWindow];
  for (const text of refused) assert.equal(parseDuration(text as string), undefined, String(text));
  assert.equal(parsed, 3_600_000);
  assert.ok([badFindTime, badHistory, unchecked, cast].length === 4);
});

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
