import { createMemoryStore } from '@jailkeeper/core';
import type { Ban, Clock, FailureRule, MemoryStore, StoreContext } from '@jailkeeper/core/store';

/** Counts remembered per client, at most: the oldest goes first. */
const SEEN_CAP = 100_000;
const SEP = '\u0000';

/**
 * Counting while Redis is unreachable (onStoreError 'local' and 'deny'): a memory store, in the
 * store's clock. A client's local count starts from the last count this instance saw from Redis
 * (within findTime), not from zero, so an attacker at 4/5 is not handed a fresh budget by an
 * outage: fleet-wide, while degraded, a client gets at most (instances × what was left of its
 * budget) more failures (see docs/security.md).
 */
export class Fallback {
  readonly local: MemoryStore = createMemoryStore();
  /** `jail\0client` → the last count Redis answered, and when (store clock). */
  readonly #seen = new Map<string, { count: number; atMs: number }>();
  /** Keys already seeded in this outage. */
  readonly #seeded = new Set<string>();
  #clock: Clock | undefined;

  init(ctx: StoreContext, clock: Clock): void {
    this.#clock = clock;
    this.local.init({ ...ctx, clock, onBan: () => {}, onUnban: () => {}, storeDown: undefined });
  }

  /**
   * Remembers what Redis answered for a client (`key`: `jail\0client`): its count, or forgets it
   * once banned. The latest answered goes last (the oldest are dropped first), its record reused.
   */
  saw(key: string, count: number, banned: boolean): void {
    const last = this.#seen.get(key);
    if (last !== undefined) this.#seen.delete(key);
    if (banned || count <= 0) return;
    if (last !== undefined) {
      last.count = count;
      last.atMs = (this.#clock as Clock).now();
      this.#seen.set(key, last);
      return;
    }
    if (this.#seen.size >= SEEN_CAP) {
      // The oldest tenth at once: one at a time, V8's Map would scan its deleted front each time.
      let drop = SEEN_CAP / 10;
      for (const old of this.#seen.keys()) {
        this.#seen.delete(old);
        if (--drop === 0) break;
      }
    }
    this.#seen.set(key, { count, atMs: (this.#clock as Clock).now() });
  }

  /** Before the first local count of a client in this outage: start it from the last count seen. */
  seed(rule: FailureRule, client: string): void {
    const key = `${rule.jail}${SEP}${client}`;
    if (this.#seeded.has(key)) return;
    this.#seeded.add(key);
    const seen = this.#seen.get(key);
    if (seen === undefined || (this.#clock as Clock).now() - seen.atMs >= rule.findTimeMs) return;
    this.local.seedFailures(rule.jail, client, seen.count, seen.atMs, rule.findTimeMs);
  }

  /** The bans made here while Redis was away: to write back. */
  pending(): Promise<Ban[]> {
    return this.local.bans();
  }

  /** After the write-back: the local state is dropped, the next outage seeds afresh. */
  async clear(): Promise<void> {
    await this.local.unbanAll();
    this.#seeded.clear();
  }
}
