import type { Cluster, Redis } from 'ioredis';
import type { Lines } from './commands.js';
import type { Keys } from './keys.js';
import type { Link } from './link.js';

/** How long a registered jail name lasts without an instance renewing it. */
const REGISTRY_TTL_MS = 7 * 86_400_000;

/**
 * The jail names the instances answer to, in one set (`<prefix>jails`): each instance adds its
 * own at start and renews them while it runs, so that the CLI can refuse an unknown jail in
 * `--redis` mode as the admin API does. Names of instances gone for a week expire.
 */
export class JailRegistry {
  readonly #lines: Lines;
  readonly #keys: Keys;
  readonly #link: Link;
  /** Background and operators' calls: the bulk deadline, not the hot path's. */
  readonly #timeoutMs: number;
  #names: readonly string[] = [];

  constructor(lines: Lines, keys: Keys, link: Link, timeoutMs: number) {
    this.#lines = lines;
    this.#keys = keys;
    this.#link = link;
    this.#timeoutMs = timeoutMs;
  }

  /** The bulk connection: never the hot path's. */
  get #client(): Redis | Cluster {
    return this.#lines.bulk;
  }

  /** The names this instance registers. */
  want(names: readonly string[]): void {
    this.#names = names;
  }

  async register(): Promise<void> {
    if (this.#names.length === 0) return;
    const key = this.#keys.jails;
    await this.#link.call(
      () =>
        this.#client
          .multi()
          .sadd(key, ...this.#names)
          .pexpire(key, REGISTRY_TTL_MS)
          .exec(),
      this.#timeoutMs,
    );
  }

  async list(): Promise<string[]> {
    return (await this.#link.call(() => this.#client.smembers(this.#keys.jails), this.#timeoutMs)).sort();
  }

  /** Clients with failures in their window, per jail: one SCAN of the failure keys on every master. */
  async failing(): Promise<Map<string, number>> {
    const client = this.#client as Cluster;
    const masters: Redis[] =
      (client as unknown as { isCluster?: boolean }).isCluster === true
        ? client.nodes('master')
        : [this.#client as Redis];
    const out = new Map<string, number>();
    const match = `${this.#keys.prefix}{s*}:f:*`;
    for (const node of masters) {
      let cursor = '0';
      do {
        const [next, batch] = await this.#link.call(
          () => node.scan(cursor, 'MATCH', match, 'COUNT', 1000),
          this.#timeoutMs,
        );
        cursor = next;
        for (const key of batch) {
          const at = key.indexOf('}:f:');
          const jail = key.slice(at + 4, key.indexOf(':', at + 4));
          out.set(jail, (out.get(jail) ?? 0) + 1);
        }
      } while (cursor !== '0');
    }
    return out;
  }
}

/**
 * The shared runtime ignore list: one set, `<prefix>ignore`. Like a permanent ban, it has no
 * expiry: an operator's `ignore add` lasts until `ignore remove`. Every change is published.
 */
export class IgnoreSet {
  readonly #lines: Lines;
  readonly #keys: Keys;
  readonly #link: Link;
  readonly #timeoutMs: number;

  constructor(lines: Lines, keys: Keys, link: Link, timeoutMs: number) {
    this.#lines = lines;
    this.#keys = keys;
    this.#link = link;
    this.#timeoutMs = timeoutMs;
  }

  /** The bulk connection: never the hot path's. */
  get #client(): Redis | Cluster {
    return this.#lines.bulk;
  }

  async edit(op: 'add' | 'remove', entries: readonly string[]): Promise<void> {
    if (entries.length === 0) return;
    const key = this.#keys.ignore;
    await this.#link.call(
      () => (op === 'add' ? this.#client.sadd(key, ...entries) : this.#client.srem(key, ...entries)),
      this.#timeoutMs,
    );
    await this.#link.call(
      () => this.#client.publish(this.#keys.channel, JSON.stringify({ type: `ignore-${op}`, entries })),
      this.#timeoutMs,
    );
  }

  async list(): Promise<string[]> {
    return (await this.#link.call(() => this.#client.smembers(this.#keys.ignore), this.#timeoutMs)).sort();
  }
}
