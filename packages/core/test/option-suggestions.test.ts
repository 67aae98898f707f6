/**
 * A mistaken option name is refused with the nearest valid one suggested, at every level of the
 * options, and a preset that does not exist is refused where it is read: in JavaScript it would be
 * undefined, and `{ ...presets.logins, paths: ['/login'] }` a jail that counts successful logins.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nearest } from '../src/config/validate.js';
import type { JailkeeperOptions } from '../src/engine/options.js';
import { presets } from '../src/engine/presets.js';
import { resolveOptions } from '../src/engine/resolve-options.js';
import { JailkeeperConfigError } from '../src/errors.js';

const login = { statuses: [401], paths: ['/login'] };

/** The error resolveOptions throws for `options` (fails the test when it throws none). */
function refusal(options: unknown): JailkeeperConfigError {
  try {
    resolveOptions(options as JailkeeperOptions);
  } catch (error) {
    assert.ok(error instanceof JailkeeperConfigError, String(error));
    return error;
  }
  assert.fail('resolveOptions accepted the options');
}

/** [what, options, option path, suggestion (null: none)]. */
const ROWS: Array<[string, unknown, string, string | null]> = [
  ['a plural', { jails: { login: { ...login, maxRetries: 3 } } }, 'jails.login.maxRetries', 'maxRetry'],
  [
    "fail2ban's lower case",
    { jails: { login: { ...login, bantime: '1h' } } },
    'jails.login.bantime',
    'banTime',
  ],
  ['a typo', { jails: { login: { ...login, excempt: ['/ws'] } } }, 'jails.login.excempt', 'exempt'],
  ['a transposition', { jails: { login: { ...login, fidnTime: '1m' } } }, 'jails.login.fidnTime', 'findTime'],
  ['a unit suffix', { jails: { login: { ...login, banTimeMs: 1000 } } }, 'jails.login.banTimeMs', 'banTime'],
  [
    "express-rate-limit's windowMs",
    { jails: { login: { ...login, windowMs: 60_000 } } },
    'jails.login.windowMs',
    'findTime',
  ],
  ["express-rate-limit's max", { jails: { login: { ...login, max: 5 } } }, 'jails.login.max', 'maxRetry'],
  [
    "@fastify/rate-limit's timeWindow",
    { defaults: { timeWindow: '1m' }, jails: { login } },
    'defaults.timeWindow',
    'findTime',
  ],
  ["@fastify/rate-limit's allowList", { jails: { login }, allowList: ['10.0.0.1'] }, 'allowList', 'ignoreIp'],
  ['top level', { jails: { login }, trustedProxy: ['10.0.0.1'] }, 'trustedProxy', 'trustedProxies'],
  ['in recidive', { jails: { login }, recidive: { maxretry: 3 } }, 'recidive.maxretry', 'maxRetry'],
  [
    'in pardon',
    { jails: { login: { ...login, pardon: { duration: '30d' } } } },
    'jails.login.pardon.duration',
    'for',
  ],
  [
    'in banTimeIncrement',
    { jails: { login: { ...login, banTimeIncrement: { maxtime: '1w' } } } },
    'jails.login.banTimeIncrement.maxtime',
    'maxTime',
  ],
  ["a jail's option at the top", { jails: { login }, maxRetry: 3 }, 'maxRetry', null],
  ["a jail's option at the top, misspelt", { jails: { login }, maxRetries: 3 }, 'maxRetries', 'maxRetry'],
  ['nothing near', { jails: { login: { ...login, colour: 'red' } } }, 'jails.login.colour', null],
  [
    "a name on Object's prototype",
    { jails: { login: JSON.parse('{"statuses":[401],"constructor":1}') } },
    'jails.login.constructor',
    null,
  ],
];

describe('unknown option names suggest the nearest valid one', () => {
  for (const [what, options, path, suggestion] of ROWS) {
    it(`${what}: ${path}${suggestion ? ` → ${suggestion}` : ''}`, () => {
      const error = refusal(options);
      assert.equal(error.code, 'JK_ERR_UNKNOWN_OPTION');
      assert.equal(error.option, path);
      if (path === 'maxRetry' || path === 'maxRetries') {
        assert.match(
          error.message,
          /(maxRetry is|It is) a jail's option: set it in jails\.<name>, or in defaults/,
        );
      }
      if (suggestion === null) assert.doesNotMatch(error.message, /Did you mean/);
      else assert.match(error.message, new RegExp(`Did you mean ${suggestion}\\?`));
      assert.match(error.message, /The valid keys are /, 'the whole list is still given');
    });
  }

  it('offers each of equally near names, and none for a name far from all', () => {
    assert.deepEqual(nearest('pathz', ['paths', 'patha', 'statuses']), ['paths', 'patha']);
    assert.deepEqual(nearest('x', ['key', 'scope']), []);
    assert.deepEqual(nearest('toString', ['key', 'scope']), []);
  });
});

describe('presets that do not exist are refused where they are read', () => {
  it('throws JK_ERR_UNKNOWN_PRESET naming presets.logins and suggesting login', () => {
    const p = presets as unknown as Record<string, unknown>;
    for (const [name, near] of [
      ['logins', 'login'],
      ['Login', 'login'],
      ['scanner', 'scanners'],
      ['badbots', 'badBots'],
      ['signin', null],
    ] as const) {
      assert.throws(
        () => ({ ...(p[name] as object), paths: ['/login'] }),
        (error: unknown) => {
          assert.ok(error instanceof JailkeeperConfigError);
          assert.equal(error.code, 'JK_ERR_UNKNOWN_PRESET');
          assert.equal(error.option, `presets.${name}`);
          if (near === null) assert.doesNotMatch(error.message, /Did you mean/);
          else assert.match(error.message, new RegExp(`Did you mean ${near}\\?`));
          assert.match(error.message, /The presets are login, scanners, forbidden, badBots\./);
          return true;
        },
      );
    }
  });

  it('still reads as a plain object: its presets, spread, JSON, awaited, and `in`', async () => {
    assert.deepEqual(Object.keys(presets), ['login', 'scanners', 'forbidden', 'badBots']);
    assert.equal({ ...presets }.login, presets.login);
    assert.equal(JSON.parse(JSON.stringify(presets)).login.maxRetry, 5);
    assert.equal(await Promise.resolve(presets), presets, 'a thenable check reads `then`: undefined');
    assert.equal('logins' in presets, false);
    assert.equal(typeof presets.toString, 'function');
    assert.doesNotThrow(() =>
      resolveOptions({ jails: { login: { ...presets.login, paths: ['/api/session'] } } }),
    );
  });

  it('refuses a jail given undefined (a misspelt preset or variable), naming the jail', () => {
    const error = refusal({ jails: { login: undefined } });
    assert.equal(error.code, 'JK_ERR_INVALID_OPTION');
    assert.equal(error.option, 'jails.login');
    assert.match(error.message, /presets\.login.*received undefined/);
  });
});
