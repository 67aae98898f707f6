import { performance } from 'node:perf_hooks';
import type { Client } from './commands.js';
import type { Link } from './link.js';

/** Steps in one call at most, over all its groups: a script's run stays short however much queues. */
const MAX_CALL_STEPS = 1024;

/**
 * The call being built, which the conversations fill in place (no array per group): the rules the
 * groups use, each once (a packed rule is about 120 bytes: sent once per call, not once per
 * group); the plan, one line per group (its rule, its shard, its steps with their ids), sent as
 * one argument; per group its client; and, on a Cluster only, the keys. Every argument costs
 * ioredis a few strings to write (and a read of the global Buffer, a getter), so a group sends
 * one: on a single Redis the script builds the group's key names from `prefix` (they hash to one
 * slot by their tag, as declared ones would); on a Cluster, whose routing needs them, all seven
 * are declared.
 */
export class Call {
  /** KEYS (on a Cluster), after a first element that becomes their count. */
  readonly keys: (string | number)[] = [0];
  /** The key prefix the script builds the names with, ioredis' keyPrefix included; '' when declared. */
  readonly prefix: string;
  readonly #jails: string[] = [];
  readonly #rules: string[] = [];
  /** One line per group: its rule's index, its shard, its steps (see lua/failure.ts). */
  plan = '';
  /** Per group, in the plan's order: its client (any text, so an argument of its own). */
  readonly clients: string[] = [];

  /**
   * True when the call goes for someone who waits (not at a linger's end): a conversation with
   * only lingering settles may then wait for the next call (Driver.take returns DEFER).
   */
  readonly mayDefer: boolean;

  constructor(prefix: string, mayDefer = false) {
    this.prefix = prefix;
    this.mayDefer = mayDefer;
  }

  /** The index (from 1) of the jail's packed rule in this call, added the first time. */
  rule(jail: string, packed: string): number {
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) if (rules[i] === packed && this.#jails[i] === jail) return i + 1;
    this.#jails.push(jail);
    rules.push(packed);
    return rules.length;
  }

  /** The script's arguments: the key count, the keys, origin, prefix, the rules (jail, packed), the plan, the clients. */
  finish(origin: string): (string | number)[] {
    const all = this.keys;
    all[0] = all.length - 1;
    all.push(origin, this.prefix, this.#rules.length);
    for (let i = 0; i < this.#rules.length; i++) all.push(this.#jails[i] as string, this.#rules[i] as string);
    all.push(this.plan);
    for (const client of this.clients) all.push(client);
    return all;
  }
}

/** What the batcher asks of the conversations it carries (counting.ts). */
export interface Driver<T> {
  /**
   * Takes the item's steps into the call being built: how many (0: it has none left; DEFER: it
   * stays queued for a later call, which only a call that `mayDefer` allows).
   */
  take(item: T, call: Call): number;
  /** An item take() deferred: how long it may wait still (ms) before it must go. */
  lingerLeft(item: T): number;
  /** The call answered: the item's answers, one per step taken. */
  answer(item: T, answers: unknown): void;
  /**
   * The call failed or missed its deadline (`late`: the item's answers should they come after
   * all), or was not sent (NOT_SENT: the store went degraded while the item waited).
   */
  fail(item: T, error: unknown, late?: Promise<unknown>): void;
}

/** Driver.take: the item waits for a later call (see Call.mayDefer). */
export const DEFER = -1;

/** An item was not sent: the store was degraded when its call was due. */
export const NOT_SENT: unknown = Object.freeze({ notSent: true });

/** The items waiting for a lane's next call, and whether one is out. */
class Lane<T> {
  items: T[] = [];
  busy = false;
  urgent = false;
  scheduled = false;
  timer: NodeJS.Timeout | undefined;
  /** When the deferred items must go (performance.now()), when the last call deferred some. */
  lingerUntil: number | undefined;
}

/**
 * The hot path's calls, batched across clients: a lane (the whole Redis, or one shard's slot on a
 * Cluster) has at most one call out; the items that arrive meanwhile go together in the next one,
 * so that the number of calls grows with round trips, not with clients or attempts. An item that
 * nobody waits for (a settle of a client whose budget is not nearly taken) waits up to `lingerMs`
 * for a call to ride with instead of going alone; its steps are taken only when the call is built,
 * so the client's next reservation, arriving meanwhile, goes in the same group.
 */
export class Batcher<T> {
  readonly #client: Client;
  readonly #link: Link;
  readonly #origin: string;
  readonly #prefix: string;
  readonly #lingerMs: number;
  readonly #driver: Driver<T>;
  readonly #lanes = new Map<number, Lane<T>>();
  #closing = false;

  /** `prefix`: the key prefix the script builds key names with, or '' where every key is declared. */
  constructor(
    client: Client,
    link: Link,
    origin: string,
    prefix: string,
    lingerMs: number,
    driver: Driver<T>,
  ) {
    this.#client = client;
    this.#link = link;
    this.#origin = origin;
    this.#prefix = prefix;
    this.#lingerMs = lingerMs;
    this.#driver = driver;
  }

  /** Queues `item` for the lane's next call; `urgent`: someone waits for it (no lingering). */
  add(laneId: number, item: T, urgent: boolean): void {
    let lane = this.#lanes.get(laneId);
    if (lane === undefined) {
      lane = new Lane();
      this.#lanes.set(laneId, lane);
    }
    lane.items.push(item);
    if (urgent || this.#closing) lane.urgent = true;
    if (!lane.busy) this.#schedule(laneId, lane);
  }

  /** An item already queued became urgent (its client's reservation arrived): no more lingering. */
  hurry(laneId: number): void {
    const lane = this.#lanes.get(laneId);
    if (lane === undefined || lane.urgent) return;
    lane.urgent = true;
    if (!lane.busy) this.#schedule(laneId, lane);
  }

  /** Every waiting item goes now, and nothing lingers from now on (the store is closing). */
  flush(): void {
    this.#closing = true;
    for (const id of [...this.#lanes.keys()]) this.hurry(id);
  }

  #schedule(id: number, lane: Lane<T>): void {
    if (lane.items.length === 0) {
      this.#lanes.delete(id);
      return;
    }
    if (lane.urgent) {
      if (lane.timer !== undefined) {
        clearTimeout(lane.timer);
        lane.timer = undefined;
      }
      if (lane.scheduled) return;
      lane.scheduled = true;
      // After this turn of the event loop: the attempts parsed from the sockets read in it, and the
      // responses its timers ended, go together.
      setImmediate(() => this.#send(id, lane, true));
    } else if (lane.timer === undefined) {
      // Deferred items wait no longer than their linger: the timer is armed for what is left of it.
      const ms =
        lane.lingerUntil === undefined ? this.#lingerMs : Math.max(0, lane.lingerUntil - performance.now());
      lane.timer = setTimeout(() => this.#send(id, lane, false), ms);
    }
  }

  /** `urgent`: sent for someone who waits (lingering items may wait on); else a linger ended. */
  #send(id: number, lane: Lane<T>, urgent: boolean): void {
    lane.scheduled = false;
    if (lane.timer !== undefined) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    if (lane.busy || lane.items.length === 0) return;
    const driver = this.#driver;
    if (this.#link.degraded) {
      const items = lane.items;
      lane.items = [];
      lane.urgent = false;
      this.#lanes.delete(id);
      for (const item of items) driver.fail(item, NOT_SENT);
      return;
    }
    const waiting = lane.items;
    const items: T[] = [];
    const call = new Call(this.#prefix, urgent && !this.#closing);
    lane.lingerUntil = undefined;
    let deferred: T[] | undefined;
    let steps = 0;
    let i = 0;
    while (i < waiting.length && steps < MAX_CALL_STEPS) {
      const item = waiting[i++] as T;
      const taken = driver.take(item, call);
      if (taken === 0) continue;
      if (taken === DEFER) {
        if (deferred === undefined) deferred = [];
        deferred.push(item);
        const until = performance.now() + driver.lingerLeft(item);
        if (lane.lingerUntil === undefined || until < lane.lingerUntil) lane.lingerUntil = until;
        continue;
      }
      items.push(item);
      steps += taken;
    }
    // Items left by the step cap are waited for; deferred ones linger on (a timer, or the next call).
    const left = i === waiting.length ? [] : waiting.slice(i);
    lane.urgent = this.#closing || left.length > 0;
    lane.items = deferred === undefined ? left : deferred.concat(left);
    if (items.length === 0) {
      this.#schedule(id, lane);
      return;
    }
    const args = call.finish(this.#origin);
    lane.busy = true;
    const sent = this.#client.jkConverse(...args);
    this.#link
      .call(() => sent)
      .then(
        (text) => {
          lane.busy = false;
          let all: unknown;
          try {
            all = JSON.parse(text);
          } catch (error) {
            for (const item of items) driver.fail(item, error);
            this.#schedule(id, lane);
            return;
          }
          const answers = Array.isArray(all) ? all : [];
          for (let k = 0; k < items.length; k++) driver.answer(items[k] as T, answers[k]);
          this.#schedule(id, lane);
        },
        (error: unknown) => {
          lane.busy = false;
          // A reply given up on is trusted only when it is one: after a reconnection ioredis has
          // been seen to resolve a stale command with another command's reply ("PONG").
          const late = sent.then(
            (text) => JSON.parse(text) as unknown,
            () => undefined,
          );
          for (let k = 0; k < items.length; k++) {
            driver.fail(
              items[k] as T,
              error,
              late.then(
                (all) => (Array.isArray(all) ? all[k] : undefined),
                () => undefined,
              ),
            );
          }
          this.#schedule(id, lane);
        },
      );
  }
}
