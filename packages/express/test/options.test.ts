import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperConfigError, type JailkeeperError } from '@jailkeeper/core';
import { jailkeeper } from '../src/index.js';

const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });

describe('jailkeeper(keeper, options)', () => {
  it('needs a keeper', () => {
    assert.throws(() => jailkeeper(undefined as never), TypeError);
  });
  it('rejects unknown options, naming the valid ones', () => {
    assert.throws(
      () => jailkeeper(keeper, { blok: 'drop' } as never),
      (e: JailkeeperConfigError) =>
        e.code === 'JK_ERR_UNKNOWN_OPTION' && /block, response, retryAfter/.test(e.message),
    );
  });
  it('rejects a bad block mode and a bad refusal status', () => {
    assert.throws(
      () => jailkeeper(keeper, { block: '444' as never }),
      (e: JailkeeperConfigError) => e.option === 'block',
    );
    assert.throws(
      () => jailkeeper(keeper, { response: { status: 200 } }),
      (e: JailkeeperConfigError) => e.option === 'response.status',
    );
  });
  it('rejects a route config naming an unknown jail, at setup', () => {
    const jk = jailkeeper(keeper);
    assert.throws(
      () => jk.route({ jails: ['ssh'] }),
      (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_JAIL',
    );
    assert.equal(typeof jk.route({ jails: ['login'] }), 'function');
    assert.equal(typeof jk.exempt(), 'function');
  });
  it('routeConfigOf must be a function', () => {
    assert.throws(
      () => jailkeeper(keeper, { routeConfigOf: 5 as never }),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_INVALID_OPTION' && /routeConfigOf/.test(e.message),
    );
  });
});
