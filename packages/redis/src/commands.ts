import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import {
  LEASE,
  MANUAL_BAN,
  READ_SHARD,
  RECORD_PARDON,
  RESTORE,
  RESTORE_HISTORY,
  UNBAN,
  UNBAN_SHARD,
} from './lua/bans.js';
import { CONVERSE } from './lua/failure.js';

type Args = (string | number)[];

/** The store's scripts, as ioredis commands. */
interface Commands {
  jkConverse(...args: Args): Promise<string>;
  jkRecordPardon(...args: Args): Promise<number>;
  jkManualBan(...args: Args): Promise<string>;
  jkUnban(...args: Args): Promise<string>;
  jkUnbanShard(...args: Args): Promise<string>;
  /** READ_SHARD, its reply as bytes: [version, count, the packed hash] (see decodeShard). */
  jkReadShardBuffer(bans: string, version: string): Promise<[Buffer | null, number, Buffer]>;
  jkRestore(...args: Args): Promise<string>;
  jkRestoreHistory(...args: Args): Promise<number>;
  jkLease(key: string, origin: string, ms: number): Promise<number>;
}

/** The app's client, with the store's scripts. */
export type Client = (Redis | Cluster) & Commands;

/** A pipeline, with the scripts the sync batches. */
export type Pipeline = ChainableCommander & {
  jkReadShardBuffer(bans: string, version: string): Pipeline;
  jkRestore(...args: Args): Pipeline;
  jkRestoreHistory(...args: Args): Pipeline;
};

/**
 * Registers the scripts once per client (a second store on the same client reuses them); ioredis
 * runs them with EVALSHA and reloads them on NOSCRIPT, in pipelines too.
 */
export function defineCommands(client: Redis | Cluster): Client {
  // jkReadShard is called as the twin ioredis defines with it, jkReadShardBuffer (see Commands).
  const define = (name: keyof Commands | 'jkReadShard', lua: string, numberOfKeys?: number) => {
    if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') {
      client.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
    }
  };
  define('jkConverse', CONVERSE); // seven keys per group: the count is the first argument
  define('jkRecordPardon', RECORD_PARDON, 1);
  define('jkManualBan', MANUAL_BAN, 4);
  define('jkUnban', UNBAN, 2);
  define('jkUnbanShard', UNBAN_SHARD, 2);
  define('jkReadShard', READ_SHARD, 2);
  define('jkRestore', RESTORE); // a variable number of keys: the count is the first argument
  define('jkRestoreHistory', RESTORE_HISTORY); // likewise
  define('jkLease', LEASE, 1);
  return client as Client;
}

/**
 * The store's connections: `hot` (the app's client) carries the hot path's calls only; `bulk`
 * (its duplicate, opened at init by an app's keeper) carries loads, reconciles, write-backs,
 * listings and operators' calls, so that a large reply never queues a counted failure behind it.
 */
export interface Lines {
  readonly hot: Client;
  bulk: Client;
}

/** True for an ioredis Cluster. */
export function isCluster(client: Redis | Cluster): boolean {
  return (client as unknown as { isCluster?: boolean }).isCluster === true;
}
