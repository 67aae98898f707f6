/**
 * The Redis key layout. Bans are grouped in SHARDS shards: a client's shard is a hash of its key,
 * and every key of a client carries its shard's hash tag `{s<n>}`, so one script call touches one
 * Cluster slot while the shard's ban hash sits beside the client's counters. Under prefix P:
 *
 *   P{s<n>}:b                 HASH   the shard's bans: client -> its bans (see codec.ts); `#x` the
 *                                    latest end, `#c` the tidy cursor
 *   P{s<n>}:v                 STRING the shard's version, `<epoch>:<seq>`: seq counts every ban and
 *                                    unban; a new epoch means the shard was lost and recreated
 *   P{s<n>}:d                 STRING after a restore wrote the shard whole, `<epoch>:<seq>:<digest>`
 *                                    of what it holds at that version (lets the other instances skip
 *                                    reading it); expires a minute after
 *   P{s<n>}:f:<jail>:<client> LIST   failure times (ms), oldest first; expires findTime after the last
 *   P{s<n>}:p:<jail>:<client> STRING pardon; expires when the pardon ends
 *   P{s<n>}:r:<jail>:<client> ZSET   open reservations (id scored by expiry); expires with the last
 *   P{s<n>}:h:<client>        HASH   ban history: <jail> -> bans, '*' -> bans in every jail
 *   Pjails                    SET    jail names the instances answer to (for the CLI)
 *   Pignore                   SET    the shared runtime ignore list
 *   Prestore                  STRING the restore lease: the instance writing back what Redis lost
 *   Pevents                   pub/sub channel
 *
 * An instance learns a shard's changes from pub/sub; one MGET of the 1,024 version keys tells it
 * which shards it missed (or lost), and it re-reads only those.
 */
export const SHARDS = 1024;

/** FNV-1a: a stable, cheap spread of client keys over shards (any hash works; all instances agree). */
export function shardOf(client: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < client.length; i++) {
    h ^= client.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SHARDS;
}

/** CRC16-XMODEM, Redis Cluster's key hash: which slot a shard's keys live in. */
function crc16(text: string): number {
  let crc = 0;
  for (let i = 0; i < text.length; i++) {
    crc ^= text.charCodeAt(i) << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Cluster slot of each shard's keys (hash tag `s<n>`). */
export const SHARD_SLOTS: readonly number[] = Array.from(
  { length: SHARDS },
  (_, n) => crc16(`s${n}`) % 16384,
);

/** Key names under one prefix. */
export class Keys {
  readonly prefix: string;
  readonly channel: string;
  readonly jails: string;
  readonly ignore: string;
  readonly lease: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.channel = `${prefix}events`;
    this.jails = `${prefix}jails`;
    this.ignore = `${prefix}ignore`;
    this.lease = `${prefix}restore`;
  }

  /** The prefix every key of shard `n` starts with: `P{s<n>}:`. */
  base(n: number): string {
    return `${this.prefix}{s${n}}:`;
  }

  bans(n: number): string {
    return `${this.base(n)}b`;
  }

  version(n: number): string {
    return `${this.base(n)}v`;
  }

  digest(n: number): string {
    return `${this.base(n)}d`;
  }

  failures(client: string, jail: string): string {
    return `${this.base(shardOf(client))}f:${jail}:${client}`;
  }

  pardon(client: string, jail: string): string {
    return `${this.base(shardOf(client))}p:${jail}:${client}`;
  }

  reservations(client: string, jail: string): string {
    return `${this.base(shardOf(client))}r:${jail}:${client}`;
  }

  history(client: string): string {
    return `${this.base(shardOf(client))}h:${client}`;
  }

  /**
   * The keys of one (jail, client)'s conversation, in the order of lua/failure.ts: failures,
   * bans, version, history, pardon, recidive failures, reservations (shard `n` = shardOf(client)).
   */
  conversation(n: number, client: string, jail: string, recidive: string): string[] {
    const base = this.base(n);
    return [
      `${base}f:${jail}:${client}`,
      `${base}b`,
      `${base}v`,
      `${base}h:${client}`,
      `${base}p:${jail}:${client}`,
      `${base}f:${recidive}:${client}`,
      `${base}r:${jail}:${client}`,
    ];
  }
}
