/** What the Redis store holds, read behind its back: for tests of write-back and data loss. */
import type { Redis } from 'ioredis';

export interface StoredBan {
  readonly jail: string;
  readonly client: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly banCount: number;
  readonly manual: boolean;
  readonly reason: string;
}

/** Every ban in the shards of `prefix` (ended ones included), read with SCAN and HGETALL. */
export async function storedBans(redis: Redis, prefix: string): Promise<StoredBan[]> {
  const out: StoredBan[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}{s*}:b`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const hash = await redis.hgetall(key);
      for (const [client, value] of Object.entries(hash)) {
        if (client.startsWith('#')) continue;
        for (const line of value.split('\n')) {
          const [jail = '', s, e, c, m, ...reason] = line.split('|');
          out.push({
            jail,
            client,
            startMs: Number(s),
            endMs: Number(e) < 0 ? Number.POSITIVE_INFINITY : Number(e),
            banCount: Number(c),
            manual: m === '1',
            reason: reason.join('|'),
          });
        }
      }
    }
  } while (cursor !== '0');
  return out;
}

/** The active bans among them, in one jail. */
export async function activeIn(redis: Redis, prefix: string, jail: string): Promise<StoredBan[]> {
  const now = Number((await redis.time())[0]) * 1000;
  return (await storedBans(redis, prefix)).filter((b) => b.jail === jail && b.endMs > now);
}
