// How a Redis store reads its shards (at start, on a reconcile, for a page of bans): each shard
// comes as one packed string and is decoded from its bytes. Checked against what Redis holds, read
// behind the store's back (SCAN and HGETALL): every ban, whatever its text holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { type StoredBan, storedBans } from './redis-bans.js';
import { redisTestBed } from './redis-server.js';

const bed = redisTestBed();
const { clients, keepers } = bed;
let run = 0;

const JAILS: JailkeeperOptions['jails'] = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' },
  api: { statuses: [403], paths: ['/api'], maxRetry: 5, banTime: '1h' },
};

async function keeper(prefix: string): Promise<Jailkeeper> {
  const c = new Redis(bed.redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  c.on('error', () => {});
  clients.push(c);
  const k = createJailkeeper({
    jails: JAILS,
    logger: quietLogger,
    store: createRedisStore({ client: c, prefix, timeout: 500 }),
  });
  keepers.push(k);
  await k.ready;
  return k;
}

const line = (b: StoredBan) =>
  [b.jail, b.client, b.startMs, b.endMs, b.banCount, b.manual, JSON.stringify(b.reason)].join(' ');

/** Every ban of a keeper's pages, as lines (the store reads them from Redis). */
async function paged(k: Jailkeeper): Promise<string[]> {
  const out: string[] = [];
  let after: string | undefined;
  do {
    const page = await k.bansPage({ after, limit: 1000 });
    for (const b of page.bans) out.push(line(b));
    after = page.next;
  } while (after !== undefined);
  return out.sort();
}

describe('redis store: reading shards', { skip: NO_REDIS }, () => {
  it('a new instance loads every ban as Redis holds it, whatever its text', async () => {
    const prefix = `jkread${process.pid}-${run++}:`;
    const writer = await keeper(prefix);
    await writer.ban('198.51.100.7', { jail: 'login', reason: 'a|b||c|' });
    await writer.ban('198.51.100.7', { jail: 'api', reason: 'same client, second jail' });
    await writer.ban('198.51.100.8', { jail: 'login', reason: 'für Ärger — 攻撃' });
    await writer.ban('198.51.100.9', { jail: 'login', duration: 'permanent', reason: '' });
    await writer.ban('2001:db8:1:2::', { jail: 'login', reason: 'an IPv6 /64' });
    // A NUL in a reason: the packed reply no longer splits into its count, and the shard is read
    // field by field.
    await writer.ban('198.51.100.10', { jail: 'api', reason: 'nul \u0000 inside' });
    const admin = new Redis(bed.redis.url);
    clients.push(admin);
    const stored = (await storedBans(admin, prefix)).map(line).sort();
    assert.equal(stored.length, 6);

    const fresh = await keeper(prefix);
    assert.deepEqual(await paged(fresh), stored);
    for (const ip of ['198.51.100.7', '198.51.100.8', '198.51.100.9', '2001:db8:1:2::1', '198.51.100.10'])
      assert.equal(fresh.check(ip).banned, true, ip);
    assert.deepEqual(fresh.banCounts(), { login: 4, api: 2 });
    const permanent = fresh.check('198.51.100.9');
    assert.ok(permanent.banned && permanent.untilMs === Number.POSITIVE_INFINITY);
  });

  it('a new instance loads thousands of bans spread over every shard', async () => {
    const prefix = `jkread${process.pid}-${run++}:`;
    const writer = await keeper(prefix);
    const ips = Array.from({ length: 3000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    for (let i = 0; i < ips.length; i += 200)
      await Promise.all(ips.slice(i, i + 200).map((ip) => writer.ban(ip, { jail: 'login' })));
    const admin = new Redis(bed.redis.url);
    clients.push(admin);
    const stored = (await storedBans(admin, prefix)).map(line).sort();
    assert.equal(stored.length, 3000);

    const fresh = await keeper(prefix);
    assert.deepEqual(fresh.banCounts(), { login: 3000 });
    assert.equal(
      ips.filter((ip) => !fresh.check(ip).banned).length,
      0,
      'every banned address refused by the new instance',
    );
    assert.deepEqual(await paged(fresh), stored);
  });
});
