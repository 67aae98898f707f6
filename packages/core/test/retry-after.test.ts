import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bannedItem } from '../src/adapter/rate-limit-headers.js';
import { retryAfterSeconds } from '../src/adapter/refusal.js';
import type { Banned } from '../src/engine/ban-index.js';
import { resolveOptions } from '../src/engine/resolve-options.js';

const HOUR = 3_600_000;
const login = resolveOptions({
  jails: { login: { statuses: [401], banTime: '1h', headers: 'ratelimit' } },
}).jailsByName.get('login');

/** A ban of an hour stamped by a clock `aheadMs` ahead of the one reading it (Redis time, say). */
function bannedBy(aheadMs: number, nowMs: number): Banned {
  const startMs = nowMs + aheadMs;
  const ban = {
    jail: 'login',
    client: '192.0.2.1',
    startMs,
    endMs: startMs + HOUR,
    banCount: 1,
    reason: '',
    manual: false,
  };
  return { banned: true, jail: 'login', client: '192.0.2.1', untilMs: ban.endMs, ban };
}

describe("Retry-After and the RateLimit field's t: never longer than the ban", () => {
  it('a ban stamped 3 ms ahead of this clock says 3600 s, not 3601', () => {
    const now = 1_000_000;
    const verdict = bannedBy(3, now);
    assert.equal(retryAfterSeconds(verdict.untilMs, now, verdict.ban.startMs), '3600');
    assert.ok(login);
    assert.equal(bannedItem(login, verdict, now), '"login";r=0;t=3600');
  });

  it('counts down from the reading clock once the ban has begun', () => {
    const start = 1_000_000;
    const verdict = bannedBy(0, start);
    assert.equal(retryAfterSeconds(verdict.untilMs, start + 600_000, verdict.ban.startMs), '3000');
    assert.equal(retryAfterSeconds(verdict.untilMs, start + HOUR - 1, verdict.ban.startMs), '1');
    assert.equal(retryAfterSeconds(verdict.untilMs, start + HOUR + 5_000, verdict.ban.startMs), '1');
  });

  it('a permanent ban has no Retry-After and no t', () => {
    const verdict = { ...bannedBy(0, 0), untilMs: Number.POSITIVE_INFINITY };
    assert.equal(retryAfterSeconds(verdict.untilMs, 0, 0), undefined);
    assert.ok(login);
    assert.equal(bannedItem(login, verdict, 0), '"login";r=0');
  });
});
