import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../src/config/duration.js';

describe('parseDuration', () => {
  const cases: Array<[string | number, number | undefined]> = [
    [1500, 1500],
    ['10m', 600_000],
    ['1d12h', 36 * 3600_000],
    ['1w', 7 * 24 * 3600_000],
    ['1mo', Math.round((365.25 * 24 * 3600_000) / 12)],
    ['1y', Math.round(365.25 * 24 * 3600_000)],
    ['90s', 90_000],
    ['250ms', 250],
    ['1h 30m', 5_400_000],
    ['2 days', 2 * 24 * 3600_000],
    ['600', 600_000], // a bare number string is seconds, as in fail2ban
    ['1.5h', 5_400_000],
    ['10M', 600_000],
    ['ten minutes', undefined],
    ['10x', undefined],
    ['', undefined],
    ['-5m', undefined],
    ['5m junk', undefined],
    ['1constructor', undefined], // not a unit, though every object has the key
    ['1h __proto__', undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} -> ${expected}`, () => assert.equal(parseDuration(input), expected));
  }
});

describe('formatDuration', () => {
  it('formats the fail2ban way', () => {
    assert.equal(formatDuration(600_000), '10m');
    assert.equal(formatDuration(36 * 3600_000), '1d12h');
    assert.equal(formatDuration(Number.POSITIVE_INFINITY), 'permanent');
    assert.equal(formatDuration(250), '250ms');
  });
});
