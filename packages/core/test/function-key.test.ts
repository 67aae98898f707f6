import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { functionKey, identifyAccount, isAccountKey } from '../src/identity/account.js';

describe('functionKey: the key a jail keyed by a function counts under', () => {
  it('keeps a short safe key as it is, case included', () => {
    assert.equal(functionKey('K-123_abc'), 'key:K-123_abc');
    assert.notEqual(functionKey('ABC'), functionKey('abc'));
  });

  it('strips the invisible characters account names are stripped of, and trims', () => {
    assert.equal(functionKey('k\u200b-1\u2060 '), 'key:k-1');
    assert.equal(functionKey('\ufeffk-1'), functionKey('k-1'));
    // NFKC: a fullwidth spelling is the same key.
    assert.equal(functionKey('ｋ-1'), functionKey('k-1'));
  });

  it('digests long keys and other characters, so a client cannot grow the store', () => {
    const long = functionKey('a'.repeat(100_000)) as string;
    assert.match(long, /^key:sha256-[0-9a-f]{32}$/);
    assert.notEqual(functionKey(`${'a'.repeat(100_000)}b`), long);
    assert.match(functionKey('tenant {1} / x') as string, /^key:sha256-[0-9a-f]{32}$/);
    assert.equal(functionKey('a'.repeat(64)), `key:${'a'.repeat(64)}`);
    assert.match(functionKey('a'.repeat(65)) as string, /^key:sha256-/);
  });

  it('gives undefined for an empty key and null for a value that is not a string', () => {
    assert.equal(functionKey(''), undefined);
    assert.equal(functionKey(' \u200b '), undefined);
    for (const value of [42, null, {}, Promise.resolve('k'), ['k']]) assert.equal(functionKey(value), null);
  });

  it('is an operator-readable key (unban key:…)', () => {
    assert.equal(isAccountKey('key:k-1'), true);
    assert.deepEqual(identifyAccount('key:k-1'), { ip: 'key:k-1', key: 'key:k-1' });
  });
});
