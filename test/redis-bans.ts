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

/** The store's shard of a client key (keys.ts: FNV-1a over 1,024 shards), as every instance computes it. */
export function shardOf(client: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < client.length; i++) {
    h ^= client.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 1024;
}

/**
 * Writes `count` automatic bans in `jail` straight into the shards of `prefix`, in the store's
 * layout (keys.ts, codec.ts), as a fleet would have left them: for tests at 100,000 bans, which
 * would take minutes through failures. Every key gets an expiry, as the store's own.
 */
export async function seedBans(
  redis: Redis,
  prefix: string,
  jail: string,
  clients: readonly string[],
  durationMs: number,
): Promise<void> {
  const now = Number((await redis.time())[0]) * 1000;
  const end = now + durationMs;
  const byShard = new Map<number, string[]>();
  for (const client of clients) {
    const n = shardOf(client);
    const list = byShard.get(n);
    if (list === undefined) byShard.set(n, [client]);
    else list.push(client);
  }
  const expireAt = end + 604_800_000;
  for (const [n, list] of byShard) {
    const pipeline = redis.pipeline();
    const fields: string[] = [];
    for (const client of list)
      fields.push(client, `${jail}|${now}|${end}|1|0|maxRetry (5) failures within 10m`);
    fields.push('#x', String(end));
    pipeline.hset(`${prefix}{s${n}}:b`, ...fields);
    pipeline.set(`${prefix}{s${n}}:v`, `${now}000:${list.length}`);
    pipeline.pexpireat(`${prefix}{s${n}}:b`, expireAt);
    pipeline.pexpireat(`${prefix}{s${n}}:v`, expireAt);
    await pipeline.exec();
  }
}

/** How many clients the shards of `prefix` hold bans of (one Lua call: cheap enough to poll). */
export async function bannedClients(redis: Redis, prefix: string): Promise<number> {
  const count = await redis.eval(
    `local total = 0
     for n = 0, 1023 do
       local key = ARGV[1] .. '{s' .. n .. '}:b'
       total = total + redis.call('HLEN', key) - redis.call('HEXISTS', key, '#x') - redis.call('HEXISTS', key, '#c')
     end
     return total`,
    0,
    prefix,
  );
  return Number(count);
}

/** True when the shards of `prefix` hold a ban of `client` (in any jail). */
export async function holdsBanOf(redis: Redis, prefix: string, client: string): Promise<boolean> {
  return (await redis.hexists(`${prefix}{s${shardOf(client)}}:b`, client)) === 1;
}
