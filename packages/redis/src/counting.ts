import type { FailureResult, FailureRule, Reservation, StoreContext } from '@jailkeeper/core/store';
import { packRule, parseFailure, parseReservation, type Versioned } from './codec.js';
import { shardOf } from './keys.js';
import { type Parts, totalsOf } from './parts.js';

const NOT_COUNTED = Object.freeze({ wouldBan: null, recidive: null, recidiveDryRun: false });

/**
 * The hot path's store calls: a failure, a reservation, its settlement, a pardon. One script call
 * each, with the store's deadline; when it fails the store goes degraded and the call is answered
 * by the local fallback (onStoreError 'local' and 'deny'), seeded with the last count seen.
 */
export class Counting {
  readonly #p: Parts;
  readonly #packed = new WeakMap<FailureRule, string>();
  #ctx: StoreContext | undefined;

  constructor(parts: Parts) {
    this.#p = parts;
  }

  attach(ctx: StoreContext): void {
    this.#ctx = ctx;
  }

  /**
   * A failure script's call with the store's deadline. Past it the store answers from its
   * fallback, but the script may still have run: when its reply comes after all, a ban it made is
   * reported as made here (its announcement's echo is ignored by this instance, which made it).
   */
  async #failureCall(client: string, pending: Promise<string>): Promise<string> {
    try {
      return await this.#p.link.call(() => pending);
    } catch (error) {
      pending.then(
        (text) => {
          // A reply given up on is trusted only when it is one: after a reconnection ioredis has
          // been seen to resolve a stale command with another command's reply ("PONG").
          let reply: ReturnType<typeof parseFailure>;
          try {
            reply = parseFailure(text);
          } catch {
            return;
          }
          if (typeof reply.result.count !== 'number') return;
          this.#p.sync.note(shardOf(client), reply);
          const { ban, alreadyBanned, recidive, recidiveDryRun } = reply.result;
          if (ban && !alreadyBanned) this.#ctx?.onBan(ban, 'local');
          if (recidive && !recidiveDryRun) this.#ctx?.onBan(recidive, 'local');
        },
        () => {},
      );
      throw error;
    }
  }

  /** A rule's constant arguments, joined once per rule. */
  #rule(rule: FailureRule): string {
    let packed = this.#packed.get(rule);
    if (packed === undefined) {
      packed = packRule(rule, this.#p.keys.channel);
      this.#packed.set(rule, packed);
    }
    return packed;
  }

  /** The keys of the failure scripts, in their order (lua/failure.ts). */
  #failureKeys(rule: FailureRule, client: string): string[] {
    const { keys } = this.#p;
    const n = shardOf(client);
    return [
      keys.failures(client, rule.jail),
      keys.bans(n),
      keys.version(n),
      keys.history(client),
      keys.pardon(client, rule.jail),
      keys.failures(client, rule.recidive?.jail ?? 'recidive'),
    ];
  }

  /** What Redis answered for a failure: versions noted, the count remembered for a fallback. */
  #counted(rule: FailureRule, client: string, reply: { result: FailureResult } & Versioned): FailureResult {
    const { result } = reply;
    this.#p.sync.note(shardOf(client), reply);
    this.#p.fallback.saw(rule.jail, client, result.count, result.ban !== null);
    totalsOf(this.#p, rule.jail).failed++;
    if (result.ban && !result.alreadyBanned) totalsOf(this.#p, rule.jail).banned++;
    return result;
  }

  async recordFailure(rule: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    const { link } = this.#p;
    if (!link.degraded) {
      try {
        const text = await this.#failureCall(
          client,
          this.#p.client.jkRecordFailure(
            ...this.#failureKeys(rule, client),
            rule.jail,
            client,
            jitterMs,
            this.#rule(rule),
            this.#p.origin,
          ),
        );
        return this.#counted(rule, client, parseFailure(text));
      } catch (error) {
        link.fail('recordFailure', error);
      }
    }
    if (this.#p.onStoreError === 'allow') {
      return {
        count: 0,
        maxRetry: rule.maxRetry,
        pardoned: false,
        ban: null,
        alreadyBanned: false,
        ...NOT_COUNTED,
      };
    }
    this.#p.fallback.seed(rule, client);
    return this.#p.fallback.local.recordFailure(rule, client, jitterMs);
  }

  async reserve(rule: FailureRule, client: string, id: string, holdMs: number): Promise<Reservation> {
    const { link, keys } = this.#p;
    if (!link.degraded) {
      try {
        const text = await link.call(() =>
          this.#p.client.jkReserve(
            keys.failures(client, rule.jail),
            keys.bans(shardOf(client)),
            keys.pardon(client, rule.jail),
            keys.reservations(client, rule.jail),
            rule.jail,
            client,
            id,
            holdMs,
            rule.findTimeMs,
            rule.maxRetry,
            rule.pardonMaxRetry === Number.POSITIVE_INFINITY ? 'inf' : rule.pardonMaxRetry,
          ),
        );
        const reservation = parseReservation(text);
        this.#p.fallback.saw(rule.jail, client, reservation.count, reservation.ban !== null);
        return reservation;
      } catch (error) {
        link.fail('reserve', error);
      }
    }
    if (this.#p.onStoreError === 'allow') {
      return { admitted: true, ban: null, count: 0, inFlight: 0, maxRetry: rule.maxRetry };
    }
    this.#p.fallback.seed(rule, client);
    return this.#p.fallback.local.reserve?.(rule, client, id, holdMs) as Promise<Reservation>;
  }

  async settle(
    rule: FailureRule,
    client: string,
    id: string,
    failed: boolean,
    jitterMs: number,
  ): Promise<FailureResult | null> {
    const { link, keys } = this.#p;
    if (!link.degraded) {
      try {
        const text = await this.#failureCall(
          client,
          this.#p.client.jkSettle(
            ...this.#failureKeys(rule, client),
            keys.reservations(client, rule.jail),
            rule.jail,
            client,
            jitterMs,
            this.#rule(rule),
            this.#p.origin,
            id,
            failed ? 1 : 0,
          ),
        );
        return text === 'null' ? null : this.#counted(rule, client, parseFailure(text));
      } catch (error) {
        link.fail('settle', error);
      }
    }
    if (this.#p.onStoreError === 'allow') return null;
    if (failed) this.#p.fallback.seed(rule, client);
    return (await this.#p.fallback.local.settle?.(rule, client, id, failed, jitterMs)) ?? null;
  }

  async recordPardon(jail: string, client: string, forMs: number): Promise<void> {
    const { link } = this.#p;
    if (!link.degraded) {
      try {
        await link.call(() => this.#p.client.jkRecordPardon(this.#p.keys.pardon(client, jail), forMs));
        return;
      } catch (error) {
        link.fail('recordPardon', error);
      }
    }
    await this.#p.fallback.local.recordPardon(jail, client, forMs);
  }
}
