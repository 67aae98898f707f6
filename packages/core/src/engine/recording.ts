import type { Clock } from '../clock.js';
import type { ClientIdentity } from '../identity/identity.js';
import type { FailureResult, FailureRule, Store } from '../store/store.js';
import type { BanBook } from './ban-book.js';
import {
  type Announcer,
  type BrokenLink,
  eventProblem,
  type JailOutcome,
  type ObserveResult,
  type ResponseEvent,
} from './events.js';
import { FailureJudge, type Judgement, probeRule } from './failure-judge.js';
import type { IgnoreList } from './ignore-list.js';
import type { InFlight } from './in-flight.js';
import type { ResolvedJail, ResolvedOptions } from './options.js';
import type { OwnerBook } from './owners.js';
import { countedMethod, fails, isExempt, logsIn, pardons as succeeds } from './rules.js';
import type { Slots } from './slots.js';
import { CrawlerVerifier } from './verified-crawlers.js';

const NONE: ObserveResult = Object.freeze({ ignored: null, jails: Object.freeze([]) });
const NONE_PROMISE = Promise.resolve(NONE);
const CLOSED: ObserveResult = Object.freeze({ ignored: 'closed', jails: Object.freeze([]) });
const INVALID_CLIENT: ObserveResult = Object.freeze({ ignored: 'invalidClient', jails: Object.freeze([]) });
const INVALID_EVENT: ObserveResult = Object.freeze({ ignored: 'invalidEvent', jails: Object.freeze([]) });
const INVALID_EVENT_PROMISE = Promise.resolve(INVALID_EVENT);

/**
 * Counting: which jails a finished response fails or succeeds in, the store calls that record it,
 * and the bans that follow, registered with the in-flight bookkeeping (`InFlight`) so that a
 * client's next request is judged after its failure lands.
 */
export class Recorder {
  readonly #jails: readonly ResolvedJail[];
  readonly #rules: ReadonlyMap<string, FailureRule>;
  readonly #store: Store;
  readonly #book: BanBook;
  readonly #ignore: IgnoreList;
  readonly #announcer: Announcer;
  readonly #clock: Clock;
  readonly #identify: (address: string) => ClientIdentity | undefined;
  /** A failure was counted and banned nobody: the admitter starts taking slots for the client. */
  readonly #onCounted: (key: string, jail: ResolvedJail) => void;
  /** A slot was settled here: the admitter wakes the attempts waiting for one. */
  readonly #onSettled: (jail: string, key: string) => void;
  /** A request's slots are being settled: no longer held. */
  readonly #onReleased: (slots: Slots) => void;
  /** Statuses that any jail counts or pardons: anything else skips the jails at once. */
  readonly #relevantStatuses: ReadonlySet<number>;
  /** True when some jail counts any status (paths or user agents only). */
  readonly #hasAnyStatusJail: boolean;
  /** What is under way: settling(), idle() and close() read it. */
  readonly #flight: InFlight;
  /** Verified crawlers: undefined unless the option is on. */
  readonly #crawlers: CrawlerVerifier | undefined;
  /** Distinct paths, shared paths and probes: consulted only for a failure in a jail that uses them. */
  readonly #judge: FailureJudge;
  /** The probe rule of each jail with `probes`, built once. */
  readonly #probeRules = new Map<string, FailureRule>();
  /** The accounts' known owners: who logged in where (jails keyed by account). */
  readonly #owners: OwnerBook;
  closed = false;

  constructor(
    options: ResolvedOptions,
    rules: ReadonlyMap<string, FailureRule>,
    store: Store,
    book: BanBook,
    ignore: IgnoreList,
    announcer: Announcer,
    clock: Clock,
    identify: (address: string) => ClientIdentity | undefined,
    flight: InFlight,
    owners: OwnerBook,
    hooks: {
      onCounted(key: string, jail: ResolvedJail): void;
      onSettled(jail: string, key: string): void;
      onReleased(slots: Slots): void;
    },
  ) {
    this.#flight = flight;
    this.#owners = owners;
    this.#onCounted = hooks.onCounted;
    this.#onSettled = hooks.onSettled;
    this.#onReleased = hooks.onReleased;
    this.#jails = options.jails;
    this.#rules = rules;
    this.#store = store;
    this.#book = book;
    this.#ignore = ignore;
    this.#announcer = announcer;
    this.#clock = clock;
    this.#identify = identify;
    const relevant = new Set<number>();
    let anyStatus = false;
    for (const jail of this.#jails) {
      if (jail.statuses === null) anyStatus = true;
      else for (const s of jail.statuses) relevant.add(s);
      if (jail.pardon) for (const s of jail.pardon.statuses) relevant.add(s);
      if (jail.owners) for (const s of jail.owners.statuses) relevant.add(s);
    }
    this.#relevantStatuses = relevant;
    this.#hasAnyStatusJail = anyStatus;
    this.#crawlers = options.verifiedCrawlers
      ? new CrawlerVerifier(options.verifiedCrawlers, clock, announcer.warner)
      : undefined;
    this.#judge = new FailureJudge(this.#jails, clock, announcer);
    for (const jail of this.#jails) {
      if (jail.probes !== null) {
        this.#probeRules.set(jail.name, probeRule(rules.get(jail.name) as FailureRule, jail.probes.weight));
      }
    }
  }

  /** The paths taken for the site's broken links now (jails with `sharedPaths`). */
  brokenLinks(): BrokenLink[] {
    return this.#judge.brokenLinks();
  }

  /** The judge's verdict on a failure: `count` at once for a jail that uses none of its options. */
  #judged(jail: ResolvedJail, id: ClientIdentity, event: ResponseEvent): Judgement {
    return FailureJudge.judges(jail) ? this.#judge.judge(jail, id, event) : 'count';
  }

  watchesStatus(status: number): boolean {
    return this.#hasAnyStatusJail || this.#relevantStatuses.has(status);
  }

  observe(event: ResponseEvent): Promise<ObserveResult> {
    if (this.closed) return Promise.resolve(CLOSED);
    const problem = eventProblem(event);
    if (problem !== undefined) {
      this.#announcer.warn(
        'JK_WRN_INVALID_EVENT',
        `keeper.observe() was given an event it cannot count (${problem}); it was ignored, and later ones are too.`,
      );
      return INVALID_EVENT_PROMISE;
    }
    const slots = event.slots;
    if (slots != null && !slots.settled) {
      // Admitted attempts settle their slots whatever the status: a success frees them.
      slots.settled = true;
      this.#onReleased(slots);
      // Several slots settle one after another: idle() must not see the gap between two store
      // calls as nothing under way (with Redis, it returned before a key's slot was counted).
      if (slots.ids.length > 1) return this.#flight.track(this.#observe(event, slots));
      return this.#observe(event, slots);
    }
    if (!this.#hasAnyStatusJail && !this.#relevantStatuses.has(event.status) && event.failed === undefined) {
      return NONE_PROMISE;
    }
    // A claimed crawler that a covered jail would count is verified first (after the response,
    // never for other clients); a real one goes on without those jails.
    if (this.#crawlers !== undefined && typeof event.method === 'string') {
      const screened = this.#crawlers.screen(
        event,
        this.#jails,
        (jail) => fails(jail as ResolvedJail, event),
        (only) =>
          this.closed
            ? Promise.resolve(CLOSED)
            : this.#observe(only === event.jails ? event : { ...event, jails: only }),
      );
      if (screened !== undefined) return screened;
    }
    return this.#observe(event);
  }

  #observe(event: ResponseEvent, slots?: Slots): Promise<ObserveResult> {
    let failures: ResolvedJail[] | undefined;
    let exempt: ResolvedJail[] | undefined;
    let pardons: ResolvedJail[] | undefined;
    const only = event.jails;
    for (const jail of this.#jails) {
      if (only !== undefined && !only.has(jail.name)) continue;
      // A jail keyed by account counts only requests whose account the app named; a jail keyed
      // by a function, only requests it gave a key.
      if (
        jail.key !== 'address' &&
        (jail.key === 'function' ? event.keys?.has(jail.name) !== true : event.account === undefined)
      )
        continue;
      if (fails(jail, event)) {
        if (isExempt(jail, event)) {
          exempt ??= [];
          exempt.push(jail);
        } else {
          failures ??= [];
          failures.push(jail);
        }
      } else if (event.failed === undefined) {
        if (jail.pardon !== null && succeeds(jail, event.method, event.status, event)) {
          pardons ??= [];
          pardons.push(jail);
        }
        if (jail.owners !== null && logsIn(jail, event.method, event.status, event))
          this.#loggedIn(jail, event);
      }
    }
    if (slots !== undefined) {
      // The usual admitted attempt: one slot, and nothing else to record but its own failure.
      const jail = slots.jails[0] as ResolvedJail;
      if (
        slots.jails.length === 1 &&
        exempt === undefined &&
        pardons === undefined &&
        (failures === undefined || (failures.length === 1 && failures[0] === jail))
      ) {
        return this.#settleOne(event, slots, jail, failures !== undefined);
      }
      return this.#record(event, failures ?? [], exempt ?? [], pardons ?? [], slots);
    }
    if (failures === undefined && pardons === undefined && exempt === undefined) return NONE_PROMISE;
    if (failures?.length === 1 && pardons === undefined && exempt === undefined) {
      // The common case, one failing jail, with one promise from the store and one from then().
      const id = typeof event.client === 'string' ? this.#identify(event.client) : event.client;
      if (id === undefined) return Promise.resolve(INVALID_CLIENT);
      const jail = failures[0] as ResolvedJail;
      if (this.#ignore.hasClient(id.ip, id.key)) {
        return Promise.resolve({ ignored: 'ignoreIp', jails: [{ jail: jail.name, action: 'ignored' }] });
      }
      return this.#fail(jail, id, event, true);
    }
    return this.#record(event, failures ?? [], exempt ?? [], pardons ?? []);
  }

  /** A login to the account the request named: its address owns the account from now on. */
  #loggedIn(jail: ResolvedJail, event: ResponseEvent): void {
    const id = typeof event.client === 'string' ? this.#identify(event.client) : event.client;
    if (id !== undefined && event.account !== undefined) this.#owners.add(jail, event.account, id.key);
  }

  async #record(
    event: ResponseEvent,
    failures_: ResolvedJail[],
    exempt: ResolvedJail[],
    pardons: ResolvedJail[],
    slots?: Slots,
  ): Promise<ObserveResult> {
    let failures = failures_;
    const id = typeof event.client === 'string' ? this.#identify(event.client) : event.client;
    if (id === undefined) return INVALID_CLIENT;
    const outcomes: JailOutcome[] = exempt.map((jail) => ({ jail: jail.name, action: 'exempt' as const }));
    if (slots !== undefined) {
      // Each slot settles once: a failure there (or an attempt abandoned before its answer, which
      // nginx logs as 499) is counted in the same store call that frees the slot.
      for (let i = 0; i < slots.jails.length; i++) {
        const jail = slots.jails[i] as ResolvedJail;
        const failed = failures.includes(jail) || event.abandoned === true;
        const key = slots.keys[i] as string;
        const held = key === id.key ? id : { ip: id.ip, key };
        outcomes.push(await this.#settle(jail, held, event, slots.ids[i] as string, failed));
      }
      failures = failures.filter((jail) => !slots.jails.includes(jail));
    }
    if (this.#ignore.hasClient(id.ip, id.key)) {
      for (const jail of [...failures, ...pardons]) outcomes.push({ jail: jail.name, action: 'ignored' });
      return { ignored: 'ignoreIp', jails: outcomes };
    }
    for (const jail of failures) outcomes.push(await this.#fail(jail, id, event, false));
    for (const jail of pardons) outcomes.push(await this.#pardon(jail, id, event.account, event.keys));
    return { ignored: null, jails: outcomes };
  }

  /** #record() for one slot and no other jail to record: the same outcome, without its lists. */
  #settleOne(
    event: ResponseEvent,
    slots: Slots,
    jail: ResolvedJail,
    failed: boolean,
  ): Promise<ObserveResult> {
    const id = typeof event.client === 'string' ? this.#identify(event.client) : event.client;
    if (id === undefined) return Promise.resolve(INVALID_CLIENT);
    const key = slots.keys[0] as string;
    const held = key === id.key ? id : { ip: id.ip, key };
    return this.#settle(jail, held, event, slots.ids[0] as string, failed || event.abandoned === true, id);
  }

  #fail(jail: ResolvedJail, id: ClientIdentity, event: ResponseEvent, alone: true): Promise<ObserveResult>;
  #fail(jail: ResolvedJail, id: ClientIdentity, event: ResponseEvent, alone: false): Promise<JailOutcome>;
  /** Records a failure in one jail. `alone`: the response failed only here, so resolve the whole result. */
  #fail(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    alone: boolean,
  ): Promise<JailOutcome | ObserveResult> {
    if (jail.key !== 'address') {
      const keyed = this.#owners.keyed(jail, id, event.account, event.keys);
      if (keyed === undefined) {
        const skipped: JailOutcome = { jail: jail.name, action: 'ignored' };
        return Promise.resolve(alone ? { ignored: null, jails: [skipped] } : skipped);
      }
      id = keyed;
    }
    const judgement = this.#judged(jail, id, event);
    if (judgement === 'repeated' || judgement === 'shared') {
      const spared: JailOutcome = { jail: jail.name, action: judgement };
      return Promise.resolve(alone ? { ignored: null, jails: [spared] } : spared);
    }
    const probe = judgement === 'probe';
    // A probe, or any failure of a client that probed within findTime, is judged at the probe's weight.
    const rule = (judgement === 'count' ? this.#rules : this.#probeRules).get(jail.name) as FailureRule;
    const jitterMs =
      jail.increment && jail.increment.jitterMs > 0 ? Math.floor(Math.random() * jail.increment.jitterMs) : 0;
    let pending: Promise<FailureResult>;
    try {
      pending = this.#store.recordFailure(rule, id.key, jitterMs);
    } catch (error) {
      pending = Promise.reject(error);
    }
    // One promise is the outcome, what settling(client) waits for (it resolves once the ban, if
    // any, is applied) and the store call close() waits for: one chain per counted failure.
    const key = id.key;
    const finish = () => this.#flight.recorded(key, recorded);
    const recorded: Promise<JailOutcome | ObserveResult> = pending.then(
      (result) => {
        try {
          const outcome = this.#afterFailure(jail, id, event, result, probe);
          return alone ? { ignored: null, jails: [outcome] } : outcome;
        } finally {
          finish();
        }
      },
      (error) => {
        finish();
        this.#announcer.storeError('recordFailure', error);
        const outcome: JailOutcome = { jail: jail.name, action: 'error' };
        return alone ? { ignored: null, jails: [outcome] } : outcome;
      },
    );
    this.#flight.recording(key, recorded);
    return recorded;
  }

  #afterFailure(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    result: FailureResult,
    probe: boolean,
  ): JailOutcome {
    if (result.alreadyBanned) {
      if (result.ban) this.#book.apply(result.ban, 'local', id.ip, true);
      return { jail: jail.name, action: 'alreadyBanned', ...(result.ban ? { ban: result.ban } : {}) };
    }
    if (this.#announcer.listens('failure')) {
      this.#announcer.emit('failure', {
        jail: jail.name,
        client: id.key,
        ip: id.ip,
        count: result.count,
        maxRetry: result.maxRetry,
        pardoned: result.pardoned,
        method: countedMethod(event.method),
        route: event.route,
        path: event.path,
        status: event.status,
        dryRun: jail.dryRun,
        probe,
      });
    }
    if (result.recidive) {
      if (result.recidiveDryRun) this.#book.wouldHaveBanned(result.recidive, id.ip);
      else this.#book.apply(result.recidive, 'local', id.ip, false, causeOf(event));
    }
    // Outcomes written out, one shape each: a spread of a shared object cost about 0.9 µs per
    // counted failure (bench/core.bench.js). A probe's outcome says so (a spread, for probes only).
    if (result.wouldBan) {
      this.#book.wouldHaveBanned(result.wouldBan, id.ip);
      const outcome: JailOutcome = {
        jail: jail.name,
        action: 'wouldBan',
        count: result.count,
        maxRetry: result.maxRetry,
        ban: result.wouldBan,
      };
      return probe ? { ...outcome, probe } : outcome;
    }
    if (result.ban) {
      this.#book.apply(result.ban, 'local', id.ip, false, causeOf(event));
      const outcome: JailOutcome = {
        jail: jail.name,
        action: 'banned',
        count: result.count,
        maxRetry: result.maxRetry,
        ban: result.ban,
      };
      return probe ? { ...outcome, probe } : outcome;
    }
    this.#onCounted(id.key, jail);
    const outcome: JailOutcome = {
      jail: jail.name,
      action: 'counted',
      count: result.count,
      maxRetry: result.maxRetry,
    };
    return probe ? { ...outcome, probe } : outcome;
  }

  #settle(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    slotId: string,
    failed: boolean,
  ): Promise<JailOutcome>;
  #settle(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    slotId: string,
    failed: boolean,
    whole: ClientIdentity,
  ): Promise<ObserveResult>;
  /**
   * Settles one slot: counted as a failure (banning at the threshold), or freed. `whole`: the
   * request's client when this slot is all it records (#settleOne): the whole result is resolved.
   * One then() on the store's promise, which is what is under way (no async layers: each cost a
   * promise, a generator and an await's closures per counted failure).
   */
  #settle(
    jail: ResolvedJail,
    id: ClientIdentity,
    event: ResponseEvent,
    slotId: string,
    failed_: boolean,
    whole?: ClientIdentity,
  ): Promise<JailOutcome | ObserveResult> {
    let failed = failed_;
    let rule = this.#rules.get(jail.name) as FailureRule;
    let probe = false;
    let spared: 'repeated' | 'shared' | undefined;
    let pending: Promise<FailureResult | null>;
    try {
      if (failed) {
        // A failure the judge leaves out frees its slot like a success; a probe settles under its rule.
        const judgement = this.#judged(jail, id, event);
        if (judgement === 'repeated' || judgement === 'shared') {
          spared = judgement;
          failed = false;
        } else if (judgement !== 'count') {
          rule = this.#probeRules.get(jail.name) as FailureRule;
          probe = judgement === 'probe';
        }
      }
      const settle = this.#store.settle as NonNullable<Store['settle']>;
      const jitterMs =
        failed && jail.increment && jail.increment.jitterMs > 0
          ? Math.floor(Math.random() * jail.increment.jitterMs)
          : 0;
      pending = settle.call(this.#store, rule, id.key, slotId, failed, jitterMs);
    } catch (error) {
      pending = Promise.reject(error);
    }
    const flight = this.#flight;
    const wrap = (outcome: JailOutcome): JailOutcome | ObserveResult =>
      whole === undefined
        ? outcome
        : { ignored: this.#ignore.hasClient(whole.ip, whole.key) ? 'ignoreIp' : null, jails: [outcome] };
    const settled: Promise<JailOutcome | ObserveResult> = pending.then(
      (result) => {
        flight.called(settled);
        this.#onSettled(jail.name, id.key);
        let outcome: JailOutcome;
        try {
          outcome =
            result === null
              ? { jail: jail.name, action: spared ?? 'released' }
              : this.#afterFailure(jail, id, event, result, probe);
        } catch (error) {
          this.#announcer.storeError('settle', error);
          outcome = { jail: jail.name, action: 'error' };
        }
        return wrap(outcome);
      },
      (error: unknown) => {
        flight.called(settled);
        this.#onSettled(jail.name, id.key);
        this.#announcer.storeError('settle', error);
        return wrap({ jail: jail.name, action: 'error' });
      },
    );
    flight.calling(settled);
    return settled;
  }

  async #pardon(
    jail: ResolvedJail,
    address: ClientIdentity,
    account: string | undefined,
    keys: ReadonlyMap<string, string> | undefined,
  ): Promise<JailOutcome> {
    const id = this.#owners.keyed(jail, address, account, keys);
    if (id === undefined) return { jail: jail.name, action: 'ignored' };
    const pardon = jail.pardon as NonNullable<ResolvedJail['pardon']>;
    try {
      await this.#flight.track(this.#store.recordPardon(jail.name, id.key, pardon.forMs));
    } catch (error) {
      this.#announcer.storeError('recordPardon', error);
      return { jail: jail.name, action: 'error' };
    }
    if (this.#announcer.listens('pardon')) {
      this.#announcer.emit('pardon', {
        jail: jail.name,
        client: id.key,
        ip: id.ip,
        untilMs: this.#clock.now() + pardon.forMs,
        maxRetry: pardon.maxRetry,
      });
    }
    return { jail: jail.name, action: 'pardoned', maxRetry: pardon.maxRetry };
  }
}

/** What made a ban, for its log line: the request that crossed the threshold. */
function causeOf(event: ResponseEvent) {
  return { method: event.method, route: event.route, path: event.path, status: event.status };
}
