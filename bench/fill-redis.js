// Fills a Redis with bans the way the Redis store writes them back (its RESTORE script, a call per
// shard of at most 200 bans, pipelined 8 shards at a time), for the benchmarks that start from a
// Redis holding many bans. Every reply is checked: a script whose arguments drifted from the
// store's would otherwise write nothing, and the bench measure an empty Redis.
import { Keys, SHARDS, shardOf } from '../packages/redis/dist/keys.js';
import { RESTORE } from '../packages/redis/dist/lua/bans.js';

/**
 * Writes `n` bans in the jail 'login' under `prefix`: ban `i` is of `client(i)`, from `startMs` to
 * `endOf(i)`. Resolves to the milliseconds it took.
 */
export async function fillRedis(
  admin,
  { prefix, n, client, startMs, endOf, reason = 'maxRetry (5) failures within 10m' },
) {
  admin.defineCommand('jkRestore', { lua: RESTORE });
  const keys = new Keys(prefix);
  const byShard = Array.from({ length: SHARDS }, () => []);
  for (let i = 0; i < n; i++) byShard[shardOf(client(i))].push(i);
  const started = Date.now();
  for (let s = 0; s < SHARDS; s += 8) {
    const pipeline = admin.pipeline();
    for (let m = s; m < Math.min(s + 8, SHARDS); m++) {
      const list = byShard[m];
      for (let k = 0; k < list.length; k += 200) {
        const chunk = list.slice(k, k + 200);
        // KEYS: bans, version, digest, each ban's history; ARGV: channel, origin, historyMs, digest
        // (none), with history, then per ban: client, its stored line, its end.
        const args = [
          keys.bans(m),
          keys.version(m),
          keys.digest(m),
          ...chunk.map((i) => keys.history(client(i))),
        ];
        args.push(keys.channel, 'bench', 86_400_000, '', 1);
        for (const i of chunk) {
          const end = endOf(i);
          args.push(client(i), `login|${startMs}|${end}|1|0|${reason}`, end);
        }
        pipeline.jkRestore(3 + chunk.length, ...args);
      }
    }
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }
  return Date.now() - started;
}
