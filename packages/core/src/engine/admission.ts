import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { ClientIdentity } from '../identity/identity.js';
import { evictOldest } from '../store/ban-history.js';
import type { FailureRule, Reservation, Store } from '../store/store.js';
import type { BanBook } from './ban-book.js';
import { type Banned, NO_SLOT, type Verdict } from './ban-index.js';
import type { Announcer, RequestInfo } from './events.js';
import type { IgnoreList } from './ignore-list.js';
import type { ResolvedJail, ResolvedOptions } from './options.js';
import type { OwnerBook } from './owners.js';
import { isExempt, jailWatches, targetsRoutes } from './rules.js';
import { mergeSlots, Slots } from './slots.js';

/** The jails whose slots a request takes, for one method and route: computed once per pair. */
export type Targets = readonly ResolvedJail[];

const NO_TARGETS: Targets = Object.freeze([]);
type RouteTables = [Map<string, Map<string, Targets>>, Map<string, Map<string, Targets>>];
/** The most (method, route) pairs remembered; routes are patterns, so this is rarely reached. */
const MAX_CACHED_ROUTES = 10_000;

/** What `keeper.admit()` decides for an attempt on targeted routes. */
export type Admission =
  | { readonly admitted: true; readonly slots: Slots | null }
  | {
      readonly admitted: false;
      /** The ban that refuses the client, or null when its attempts in flight took the whole budget for longer than `attempts.wait`. */
      readonly verdict: Banned | null;
    };

/** What `keeper.attempts()` returns: this process's attempts under admission and the slots held. */
export interface AttemptsStatus {
  /** Attempts waiting for admission now (a slot being reserved, or waited for). */
  readonly admitting: number;
  /** Slots held per jail by attempts whose answer is not decided yet. */
  readonly held: Record<string, number>;
}

const ADMITTED_WITHOUT_SLOTS: Admission = Object.freeze({ admitted: true, slots: null });

/**
 * Admission: before a handler of a route that a jail targets runs, the attempt reserves a slot
 * in that jail (one atomic store call), so that failures counted plus attempts in flight never
 * pass `maxRetry`, however the attempts are sent (in parallel, pipelined, over several instances).
 * An attempt beyond the budget waits for a slot (woken when one of this process's attempts
 * settles, polling for those of other instances), at most `attempts.wait`; then it is refused.
 * A client with a failure in an app-wide jail (statuses only) takes slots there too, for every
 * request, until its failures leave the window: clients without failures never wait.
 */
export class Admitter {
  readonly #jails: readonly ResolvedJail[];
  readonly #rules: ReadonlyMap<string, FailureRule>;
  readonly #store: Store;
  readonly #book: BanBook;
  readonly #ignore: IgnoreList;
  readonly #announcer: Announcer;
  readonly #clock: Clock;
  readonly #holdMs: number;
  readonly #waitMs: number;
  readonly #appWide: readonly ResolvedJail[];
  /** The jails that target routes (name paths or methods) by address: the only ones `targets()` looks at. */
  readonly #routeJails: readonly ResolvedJail[];
  readonly #accountJails: readonly ResolvedJail[];
  /** Targets by route then method, case-sensitive [0] and not [1]; per route config in the WeakMap. */
  readonly #targetsByRoute: RouteTables = [new Map(), new Map()];
  readonly #targetsByConfig = new WeakMap<ReadonlySet<string>, RouteTables>();
  #cachedRoutes = 0;
  /** Clients with failures in an app-wide jail: key → jail → until (ms). Bounded. */
  readonly #suspects = new Map<string, Map<string, number>>();
  readonly #maxSuspects: number;
  /** Requests waiting for a slot, by jail and client: woken when one of ours settles. */
  readonly #waiters = new Map<string, Array<() => void>>();
  /**
   * Attempts admitted while the store failed, by jail and client: at most `maxRetry` within
   * `findTime` per instance (the degraded bound), never "admitted" blindly.
   */
  readonly #local = new Map<string, { count: number; untilMs: number }>();
  /**
   * The slots held in this process, by client key: what `status()` shows and `unban` frees. A
   * client's one attempt in flight is its Slots itself; a Set only when it has several.
   */
  readonly #held = new Map<string, Slots | Set<Slots>>();
  readonly #owners: OwnerBook;
  readonly #check: (client: ClientIdentity, request: RequestInfo) => Verdict;
  /**
   * Slot ids: this process's 96 random bits, then a count. Unique across a fleet (they share a
   * client's reservations in Redis), and short: each id is an argument of two store calls.
   */
  readonly #prefix = `${randomBytes(12).toString('base64url')}:`;
  #next = 0;
  /** Attempts waiting for admission now (see `keeper.attempts()`). */
  admitting = 0;
  /** True when the store can reserve: without it, the adapters fall back to settling() alone. */
  readonly enabled: boolean;

  constructor(
    options: ResolvedOptions,
    rules: ReadonlyMap<string, FailureRule>,
    store: Store,
    book: BanBook,
    ignore: IgnoreList,
    announcer: Announcer,
    clock: Clock,
    owners: OwnerBook,
    check: (client: ClientIdentity, request: RequestInfo) => Verdict,
  ) {
    this.#owners = owners;
    this.#check = check;
    this.#jails = options.jails;
    this.#rules = rules;
    this.#store = store;
    this.#book = book;
    this.#ignore = ignore;
    this.#announcer = announcer;
    this.#clock = clock;
    this.#holdMs = options.attempts.holdMs;
    this.#waitMs = options.attempts.waitMs;
    this.#maxSuspects = options.maxTrackedClients;
    this.#appWide = options.jails.filter(
      (j) => !j.dryRun && j.key === 'address' && j.paths.isEmpty && j.methods === null,
    );
    this.#routeJails = options.jails.filter((j) => j.key === 'address' && targetsRoutes(j));
    this.#accountJails = options.jails.filter(
      (j) => !j.dryRun && (j.key === 'account' || j.key === 'account+address'),
    );
    this.enabled = typeof store.reserve === 'function' && typeof store.settle === 'function';
  }

  /**
   * The jails a request with this method takes slots in on this route (its pattern as the router
   * matched it): those that target routes, watch this method and route, and do not exempt it.
   * `only` is the route's own config (`{ jails }`). Cached per pair.
   */
  targets(method: string, route: string, caseInsensitive: boolean, only?: ReadonlySet<string>): Targets {
    if (!this.enabled || this.#routeJails.length === 0) return NO_TARGETS;
    const counted = method === 'HEAD' ? 'GET' : method;
    // Looked up without building a key: a request on a route no jail targets allocates nothing.
    let tables = only === undefined ? this.#targetsByRoute : this.#targetsByConfig.get(only);
    if (tables === undefined) {
      tables = [new Map(), new Map()];
      this.#targetsByConfig.set(only as ReadonlySet<string>, tables);
    }
    const byRoute = tables[caseInsensitive ? 1 : 0];
    let byMethod = byRoute.get(route);
    let targets = byMethod?.get(counted);
    if (targets === undefined) {
      const event = { route, path: route, caseInsensitive };
      const list = this.#routeJails.filter(
        (j) =>
          (only === undefined || only.has(j.name)) && jailWatches(j, counted, event) && !isExempt(j, event),
      );
      targets = list.length === 0 ? NO_TARGETS : Object.freeze(list);
      if (this.#cachedRoutes < MAX_CACHED_ROUTES) {
        this.#cachedRoutes++;
        if (byMethod === undefined) {
          byMethod = new Map();
          byRoute.set(route, byMethod);
        }
        byMethod.set(counted, targets);
      }
    }
    return targets;
  }

  /** True when this client must take slots in an app-wide jail (it has failures there). */
  #suspectJails(key: string): ResolvedJail[] | undefined {
    if (this.#suspects.size === 0) return undefined;
    const held = this.#suspects.get(key);
    if (held === undefined) return undefined;
    const now = this.#clock.now();
    let out: ResolvedJail[] | undefined;
    for (const jail of this.#appWide) {
      const until = held.get(jail.name);
      if (until === undefined) continue;
      if (until <= now) held.delete(jail.name);
      else {
        out ??= [];
        out.push(jail);
      }
    }
    if (held.size === 0) this.#suspects.delete(key);
    return out;
  }

  /** A failure was counted for `key` in `jail`: in an app-wide jail, its requests take slots from now on. */
  suspect(key: string, jail: ResolvedJail): void {
    if (!this.enabled || jail.dryRun || !jail.paths.isEmpty || jail.methods !== null) return;
    let held = this.#suspects.get(key);
    if (held === undefined) {
      // The oldest tenth at once: one at a time scans V8's holes at the Map's front every time.
      if (this.#suspects.size >= this.#maxSuspects) evictOldest(this.#suspects, this.#maxSuspects);
      held = new Map();
      this.#suspects.set(key, held);
    }
    held.set(jail.name, this.#clock.now() + jail.findTimeMs);
  }

  /**
   * Whether this request must be admitted at all: it targets a jail's routes, or its client has
   * failures in an app-wide jail. Synchronous and allocation-free for everyone else.
   */
  needed(identity: ClientIdentity, targets: Targets, withSuspects: boolean): boolean {
    return (
      targets.length > 0 || (withSuspects && this.#suspects.size > 0 && this.#suspects.has(identity.key))
    );
  }

  /**
   * Reserves a slot in every jail the request takes slots in; see the class comment. The usual
   * case, one jail admitted at its first try, is one promise of the store's and one then(): no
   * async layers (each cost a promise, a generator and an await's closures per attempt).
   */
  admit(identity: ClientIdentity, targets: Targets, withSuspects: boolean): Promise<Admission> {
    let jails: Targets;
    try {
      const suspect = withSuspects ? this.#suspectJails(identity.key) : undefined;
      jails = suspect === undefined ? targets : [...targets, ...suspect.filter((j) => !targets.includes(j))];
      if (jails.length === 0 || this.#ignore.hasClient(identity.ip, identity.key))
        return Promise.resolve(ADMITTED_WITHOUT_SLOTS);
    } catch (error) {
      return Promise.reject(error);
    }
    if (jails.length === 1) return this.#admitOne(jails, identity.key);
    return this.#admitMany(identity, jails);
  }

  /** One jail: its first reservation's answer admits at once; anything else goes on in #reserveOne. */
  #admitOne(jails: Targets, key: string): Promise<Admission> {
    this.admitting++;
    const jail = jails[0] as ResolvedJail;
    const deadline = this.#clock.now() + this.#waitMs;
    const id = `${this.#prefix}${this.#next++}`;
    let pending: Promise<Reservation>;
    try {
      const reserve = this.#store.reserve as NonNullable<Store['reserve']>;
      pending = reserve.call(this.#store, this.#rules.get(jail.name) as FailureRule, key, id, this.#holdMs);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.then(
      (answer): Admission | Promise<Admission> => {
        if (!answer.admitted) return this.#admitLater(jails, key, deadline, { id, answer });
        this.admitting--;
        const left = Math.max(0, answer.maxRetry - answer.count - answer.inFlight);
        return { admitted: true, slots: this.#hold(new Slots(jails, [id], [key], [left])) };
      },
      (error: unknown): Admission => {
        this.admitting--;
        this.#announcer.storeError('reserve', error);
        const local = this.#admitLocally(jail, key, id);
        if (!local.admitted) return { admitted: false, verdict: null };
        return { admitted: true, slots: this.#hold(new Slots(jails, [id], [key], [local.left])) };
      },
    );
  }

  /** One jail whose first reservation was not admitted: refused, or waiting for a slot. */
  async #admitLater(
    jails: Targets,
    key: string,
    deadline: number,
    first: { id: string; answer: Reservation },
  ): Promise<Admission> {
    try {
      const answer = await this.#reserveOne(jails[0] as ResolvedJail, key, deadline, first);
      if (!answer.admitted) return { admitted: false, verdict: answer.verdict };
      return { admitted: true, slots: this.#hold(new Slots(jails, [answer.id], [key], [answer.left])) };
    } finally {
      this.admitting--;
    }
  }

  async #admitMany(identity: ClientIdentity, jails: Targets): Promise<Admission> {
    this.admitting++;
    try {
      const deadline = this.#clock.now() + this.#waitMs;
      const ids: string[] = [];
      const left: number[] = [];
      for (const jail of jails) {
        const answer = await this.#reserveOne(jail, identity.key, deadline);
        if (answer.admitted) {
          ids.push(answer.id);
          left.push(answer.left);
          continue;
        }
        await this.#release(jails.slice(0, ids.length), identity.key, ids);
        return { admitted: false, verdict: answer.verdict };
      }
      return {
        admitted: true,
        slots: this.#hold(
          new Slots(
            jails,
            ids,
            ids.map(() => identity.key),
            left,
          ),
        ),
      };
    } finally {
      this.admitting--;
    }
  }

  /**
   * Reserves an attempt's slots in jails keyed by a function (`key: (facts) => …`), each under
   * the key the attempt computed for it (`keys[i]` for `targets[i]`). The attempt judged the keys'
   * bans before (synchronously, from the ban book); a ban the store knows of refuses here too.
   */
  async admitKeys(identity: ClientIdentity, targets: Targets, keys: readonly string[]): Promise<Admission> {
    this.admitting++;
    try {
      if (targets.length === 0 || this.#ignore.hasClient(identity.ip, identity.key))
        return ADMITTED_WITHOUT_SLOTS;
      const deadline = this.#clock.now() + this.#waitMs;
      const ids: string[] = [];
      const left: number[] = [];
      for (let i = 0; i < targets.length; i++) {
        const answer = await this.#reserveOne(targets[i] as ResolvedJail, keys[i] as string, deadline);
        if (answer.admitted) {
          ids.push(answer.id);
          left.push(answer.left);
          continue;
        }
        await this.#releaseKeys(targets.slice(0, ids.length), keys, ids);
        return { admitted: false, verdict: answer.verdict };
      }
      return { admitted: true, slots: this.#hold(new Slots(targets, ids, keys, left)) };
    } finally {
      this.admitting--;
    }
  }

  /** Slots now held in this process: kept by client key until they settle. */
  #hold(slots: Slots): Slots {
    const keys = slots.keys;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (i > 0 && keys.indexOf(key) < i) continue; // a key held twice by one request: once
      const held = this.#held.get(key);
      if (held === undefined) this.#held.set(key, slots);
      else if (held instanceof Set) held.add(slots);
      else if (held !== slots) this.#held.set(key, new Set([held, slots]));
    }
    return slots;
  }

  /**
   * One request's slots taken in two steps, as one: the parts leave the held table and the whole
   * takes their place (it is what settles, and what `released()` is given).
   */
  merge(a: Slots | null, b: Slots): Slots {
    if (a === null) return b;
    this.released(a);
    this.released(b);
    return this.#hold(mergeSlots(a, b) as Slots);
  }

  /** The request holding `slots` settled them (or they were freed): no longer held. */
  released(slots: Slots): void {
    for (const key of slots.keys) {
      const held = this.#held.get(key);
      if (held === undefined) continue;
      if (held === slots) this.#held.delete(key);
      else if (held instanceof Set) {
        held.delete(slots);
        if (held.size === 1) this.#held.set(key, held.values().next().value as Slots);
        else if (held.size === 0) this.#held.delete(key);
      }
    }
  }

  /** Slots held in this process, per jail (for `status()`). */
  heldByJail(): Map<string, number> {
    const out = new Map<string, number>();
    for (const held of this.#held.values()) {
      for (const slots of held instanceof Set ? held : [held]) {
        for (const jail of slots.jails) out.set(jail.name, (out.get(jail.name) ?? 0) + 1);
      }
    }
    return out;
  }

  /**
   * An operator lifted `key` (`unban`): the slots held under it are freed now (the attempts that
   * held them are counted without slots when they end), and its waiting attempts try again.
   * Resolves the number of slots freed.
   */
  async free(key: string): Promise<number> {
    const held = this.#held.get(key);
    this.#local.forEach((_, k) => {
      if (k.endsWith(`\u0000${key}`)) this.#local.delete(k);
    });
    if (held === undefined) return 0;
    this.#held.delete(key);
    let freed = 0;
    for (const slots of held instanceof Set ? [...held] : [held]) {
      if (slots.settled) continue;
      slots.settled = true;
      this.released(slots);
      freed += slots.ids.length;
      await this.#releaseKeys(slots.jails, slots.keys, slots.ids);
    }
    return freed;
  }

  /**
   * The jails a request with this method takes slots in where the router gives no pattern text
   * (a RegExp route, a sub-app whose routes are not known): those that target routes, watch this
   * method and the request's `path`, and do not exempt it, as its response is judged. Not cached:
   * paths are the client's to choose.
   */
  pathTargets(method: string, path: string, caseInsensitive: boolean, only?: ReadonlySet<string>): Targets {
    if (!this.enabled || this.#routeJails.length === 0) return NO_TARGETS;
    const counted = method === 'HEAD' ? 'GET' : method;
    const where = { route: undefined, path, caseInsensitive };
    const list = this.#routeJails.filter(
      (j) =>
        (only === undefined || only.has(j.name)) && jailWatches(j, counted, where) && !isExempt(j, where),
    );
    return list.length === 0 ? NO_TARGETS : list;
  }

  /**
   * The jails keyed by account (or account and address) that count a request with this method on
   * this route: `account()` reserves in them once the app knows the account.
   */
  accountTargets(
    method: string,
    route: string | null | undefined,
    caseInsensitive: boolean,
    path: string,
  ): Targets {
    if (this.#accountJails.length === 0) return NO_TARGETS;
    const counted = method === 'HEAD' ? 'GET' : method;
    const where = { route, path, caseInsensitive };
    const list = this.#accountJails.filter((j) => jailWatches(j, counted, where) && !isExempt(j, where));
    return list.length === 0 ? NO_TARGETS : list;
  }

  /**
   * Admits an attempt once the app named its account: refused when the account (or the pair) is
   * banned (in one of `targets`, or app-wide: a recidive ban of the account); otherwise a slot is
   * reserved there, as for addresses. A known owner of the account (it logged in from this
   * address) is judged as the pair account+address: strangers' failures never refuse it.
   */
  async admitAccount(
    identity: ClientIdentity,
    account: string,
    targets: Targets,
    where: RequestInfo,
  ): Promise<Admission> {
    this.admitting++;
    try {
      return await this.#admitAccount(identity, account, targets, where);
    } finally {
      this.admitting--;
    }
  }

  async #admitAccount(
    identity: ClientIdentity,
    account: string,
    targets: Targets,
    where: RequestInfo,
  ): Promise<Admission> {
    if (targets.length === 0 || this.#ignore.hasClient(identity.ip, identity.key))
      return ADMITTED_WITHOUT_SLOTS;
    const deadline = this.#clock.now() + this.#waitMs;
    const ids: string[] = [];
    const keys: string[] = [];
    const left: number[] = [];
    for (const jail of targets) {
      const keyed = this.#owners.keyed(jail, identity, account) as ClientIdentity;
      const verdict = this.#check(keyed, where);
      const answer = verdict.banned
        ? { admitted: false as const, verdict }
        : this.enabled
          ? await this.#reserveOne(jail, keyed.key, deadline)
          : { admitted: true as const, id: '', left: 0 };
      if (answer.admitted) {
        ids.push(answer.id);
        keys.push(keyed.key);
        left.push(answer.left);
        continue;
      }
      await this.#releaseKeys(targets.slice(0, ids.length), keys, ids);
      return { admitted: false, verdict: answer.verdict };
    }
    return { admitted: true, slots: this.enabled ? this.#hold(new Slots(targets, ids, keys, left)) : null };
  }

  /** `first`: the answer of a first try made already (#admitOne), handled as this loop's first. */
  async #reserveOne(
    jail: ResolvedJail,
    key: string,
    deadline: number,
    first?: { id: string; answer: Reservation },
  ): Promise<{ admitted: true; id: string; left: number } | { admitted: false; verdict: Banned | null }> {
    const rule = this.#rules.get(jail.name) as FailureRule;
    const reserve = this.#store.reserve as NonNullable<Store['reserve']>;
    for (let round = 0; ; round++) {
      const id = round === 0 && first !== undefined ? first.id : `${this.#prefix}${this.#next++}`;
      let answer: Reservation;
      try {
        answer =
          round === 0 && first !== undefined
            ? first.answer
            : await reserve.call(this.#store, rule, key, id, this.#holdMs);
      } catch (error) {
        // The store failed or missed its deadline: judged by this instance's own count, never
        // admitted blindly (an attacker's burst must not buy more than maxRetry per instance).
        this.#announcer.storeError('reserve', error);
        return this.#admitLocally(jail, key, id);
      }
      // What the reservation knows: the attempts left, this one counted as a failure.
      if (answer.admitted)
        return { admitted: true, id, left: Math.max(0, answer.maxRetry - answer.count - answer.inFlight) };
      if (answer.ban !== null) {
        this.#book.apply(answer.ban, 'remote', undefined, true);
        const slot = this.#book.index.find(key, jail.name);
        return { admitted: false, verdict: slot === NO_SLOT ? null : this.#book.index.verdict(slot) };
      }
      const left = deadline - this.#clock.now();
      if (left <= 0) return { admitted: false, verdict: null };
      await this.#wait(`${jail.name}\u0000${key}`, Math.min(left, 20 * 2 ** Math.min(round, 4)));
    }
  }

  /** Admission while the store cannot answer: at most `maxRetry` per client and jail within `findTime`. */
  #admitLocally(
    jail: ResolvedJail,
    key: string,
    id: string,
  ): { admitted: true; id: string; left: number } | { admitted: false; verdict: null } {
    const now = this.#clock.now();
    const local = `${jail.name}\u0000${key}`;
    let seen = this.#local.get(local);
    if (seen === undefined || seen.untilMs <= now) {
      if (this.#local.size >= this.#maxSuspects) evictOldest(this.#local, this.#maxSuspects);
      seen = { count: 0, untilMs: now + jail.findTimeMs };
      this.#local.set(local, seen);
    }
    if (seen.count >= jail.maxRetry) return { admitted: false, verdict: null };
    seen.count++;
    return { admitted: true, id, left: jail.maxRetry - seen.count };
  }

  /** Waits until one of this process's attempts of the same client settles, or `ms` passes. */
  #wait(slotKey: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      let list = this.#waiters.get(slotKey);
      if (list === undefined) {
        list = [];
        this.#waiters.set(slotKey, list);
      }
      list.push(done);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** A slot of `key` in `jail` was settled here: waiting attempts try again. */
  wake(jail: string, key: string): void {
    if (this.#waiters.size === 0) return;
    const slotKey = `${jail}\u0000${key}`;
    const list = this.#waiters.get(slotKey);
    if (list === undefined) return;
    this.#waiters.delete(slotKey);
    for (const resume of list) resume();
  }

  #release(jails: readonly ResolvedJail[], key: string, ids: readonly string[]): Promise<void> {
    return this.#releaseKeys(
      jails,
      ids.map(() => key),
      ids,
    );
  }

  async #releaseKeys(
    jails: readonly ResolvedJail[],
    keys: readonly string[],
    ids: readonly string[],
  ): Promise<void> {
    if (!this.enabled) return;
    const settle = this.#store.settle as NonNullable<Store['settle']>;
    await Promise.all(
      jails.map((jail, i) =>
        settle
          .call(
            this.#store,
            this.#rules.get(jail.name) as FailureRule,
            keys[i] as string,
            ids[i] as string,
            false,
            0,
          )
          .then(
            () => this.wake(jail.name, keys[i] as string),
            (error) => this.#announcer.storeError('settle', error),
          ),
      ),
    );
  }
}
