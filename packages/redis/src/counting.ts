import { performance } from 'node:perf_hooks';
import type { Ban, FailureResult, FailureRule, Reservation, StoreContext } from '@jailkeeper/core/store';
import { Batcher, type Call, DEFER, type Driver, NOT_SENT } from './batch.js';
import { type FailureReply, failureOf, packRule, reservationOf } from './codec.js';
import { isCluster } from './commands.js';
import { shardOf } from './keys.js';
import { type Parts, totalsOf } from './parts.js';

const NOT_COUNTED = Object.freeze({ wouldBan: null, recidive: null, recidiveDryRun: false });
const SEP = '\u0000';
/** Steps in one call at most: a script's run stays short however many attempts queue. */
const MAX_STEPS = 256;
/**
 * How long a refusal Redis gave (the budget taken) answers this instance's next reservations of
 * the same client without asking again, unless a settle, a pardon or an unban here changes the
 * counts first. Waiting attempts poll (admission.ts, after 20, 40, 80 ms...); this keeps their
 * polls local until the ban that usually ends them arrives. A slot freed by another instance's
 * success is seen at most this much later.
 */
const RECHECK_MS = 100;
/** How long a ban learned here refuses its client's reservations without a call, at most. */
const BAN_HELD_MS = 60_000;
/** Refusals remembered at most (one per attacked client and jail): the oldest tenth goes first. */
const HELD_CAP = 10_000;
/**
 * How long a settle or a failure that nobody waits for (its client's budget not nearly taken) may
 * wait for a call to ride with: under traffic it goes in the next call of any client, so a counted
 * failure costs its reservation's call and a share of one, not two calls. Its slot stays taken in
 * Redis meanwhile (the bound holds); a ban it might make goes at once (the client is "crowded").
 */
const LINGER_MS = 20;
/**
 * Calls a conversation holding only lingering settles lets go by, for its client's next
 * reservation to ride in the same group (one group of two steps, not two groups: under a steady
 * failure-heavy load each call carried every client twice over, a settle alone and a reservation
 * alone). A few calls, and never past LINGER_MS from when the settle queued: a success's settle
 * frees a slot an owner's login on another instance may be waiting for.
 */
const DEFER_CALLS = 3;

/** What a step waits for: a reservation, a settlement (null: a success), a failure's result. */
type Answer = Reservation | FailureResult | null;

/** One call of the store contract, queued: 'r' reserve, 's'/'S' settle (success/failure), 'f' recordFailure. */
interface Step {
  readonly kind: 'r' | 's' | 'S' | 'f';
  readonly rule: FailureRule;
  readonly client: string;
  readonly packed: string;
  readonly id: string;
  /** holdMs for a reservation, jitterMs for a failure. */
  readonly n: number;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (error: unknown) => void;
}

/** A (jail, client)'s conversation: steps waiting, the steps of the call out, and whether it is queued or out. */
interface Talk {
  readonly jail: string;
  readonly client: string;
  readonly key: string;
  /** The client's shard (keys.ts), hashed once per conversation. */
  readonly shard: number;
  /** The batcher's lane: 0, or the client's shard on a Cluster. */
  readonly lane: number;
  steps: Step[];
  /** The steps the call out carries (empty when none is out). */
  taken: Step[];
  /** True while the conversation is in the batcher (waiting for a call, or in the call out). */
  busy: boolean;
  /** True while a call carrying its steps is out. */
  out: boolean;
  /** Calls let go by while only lingering settles waited (DEFER_CALLS at most). */
  deferred: number;
  /** When its steps began to wait in the batcher (performance.now()): a deferral ends LINGER_MS after. */
  since: number;
}

const NONE: Step[] = [];

/**
 * A slot id as a token of the plan (lua/failure.ts): as it is, unless it holds a character the
 * script would split at (a space, a control character) or begins with `~`; then `~` and the id
 * with those characters, and `%`, written `%XX`. Two ids never give one token: an escaped one
 * begins with `~`, a plain one never does. The keeper's own ids are plain; the store's callers
 * may pass any text.
 */
function planId(id: string): string {
  let plain = id.charCodeAt(0) !== 0x7e;
  for (let i = 0; plain && i < id.length; i++) if (id.charCodeAt(i) <= 0x20) plain = false;
  if (plain) return id;
  return `~${id.replace(/[\x00-\x20%~]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;
}

const OPERATION = { r: 'reserve', s: 'settle', S: 'settle', f: 'recordFailure' } as const;

/**
 * The hot path's store calls: a failure, a reservation, its settlement, a pardon. One
 * conversation per (jail, client) in this instance: while a call is out, the calls that arrive
 * for the same client wait, and go together in the next call (one script run, lua/failure.ts),
 * so a burst of N attempts costs a few calls, not N. A refusal is remembered for RECHECK_MS so
 * that waiting attempts' polls stay local. Each call has the store's deadline; when it fails the
 * store goes degraded and the steps are answered by the local fallback (onStoreError 'local' and
 * 'deny'), seeded with the last count seen.
 */
export class Counting implements Driver<Talk> {
  readonly #p: Parts;
  readonly #packed = new WeakMap<FailureRule, string>();
  readonly #talks = new Map<string, Talk>();
  /** `jail\0client` → a refusal Redis gave, for the same packed rule, until `untilMs` (Date.now()). */
  readonly #held = new Map<string, { packed: string; answer: Reservation; untilMs: number }>();
  #ctx: StoreContext | undefined;
  /** Reservations admitted by the local fallback (during an outage) and not yet settled. */
  readonly #localIds = new Set<string>();
  /**
   * Slots Redis may hold for attempts this instance answered without it: a reservation whose call
   * was sent but failed (past its deadline it may still run, late, and take a slot), and a settle
   * that did not reach Redis (its slot stays taken). Until `holdMs` (a minute by default) such a
   * slot would take a share of its client's budget: after a Redis stall, an owner's next login
   * waited for a slot no attempt held. `settled`: the attempt has ended, so the slot is released
   * when Redis answers again (release()); until then its own settle frees it, if it reaches Redis.
   */
  readonly #orphans = new Map<string, { rule: FailureRule; client: string; settled: boolean }>();
  /** `jail\0client` whose last answer showed its budget (nearly) taken: its settles go at once. */
  readonly #crowded = new Set<string>();
  readonly #batch: Batcher<Talk>;
  /** One lane for the whole Redis; on a Cluster, one per shard (a script touches one slot). */
  readonly #perShard: boolean;

  constructor(parts: Parts) {
    this.#p = parts;
    this.#perShard = isCluster(parts.lines.hot);
    // On a single Redis the script builds the key names (fewer arguments to write): with the
    // client's own keyPrefix, which ioredis adds to declared keys only.
    const clientPrefix = (parts.lines.hot as { options?: { keyPrefix?: string } }).options?.keyPrefix ?? '';
    this.#batch = new Batcher(
      parts.lines.hot,
      parts.link,
      parts.origin,
      this.#perShard ? '' : `${clientPrefix}${parts.keys.prefix}`,
      LINGER_MS,
      this,
    );
  }

  /** The store is closing: what lingers goes now. */
  flush(): void {
    this.#batch.flush();
  }

  /**
   * Redis answers again (after an outage, or a missed deadline found to be a hiccup): the slots
   * Redis may still hold for attempts that have ended are released (a settle as a success each:
   * freeing a slot that was never taken does nothing). Called after the late replies of the
   * outage's calls, which come before the probe's answer on the same connection.
   */
  release(): void {
    if (this.#orphans.size === 0) return;
    for (const [id, orphan] of this.#orphans) {
      if (!orphan.settled) continue;
      this.#orphans.delete(id);
      // A release that fails is an orphan again (fail()), released after the next recovery.
      this.#enqueue(
        orphan.rule,
        orphan.client,
        `${orphan.rule.jail}${SEP}${orphan.client}`,
        's',
        id,
        0,
      ).catch(() => {});
    }
  }

  /** A slot Redis may hold for `id` (see #orphans). */
  #orphan(step: Step, settled: boolean): void {
    if (this.#orphans.size >= HELD_CAP * 10 && !this.#orphans.has(step.id)) {
      // The oldest tenth: their slots expire in Redis anyway (holdMs).
      let drop = HELD_CAP;
      for (const old of this.#orphans.keys()) {
        this.#orphans.delete(old);
        if (--drop === 0) break;
      }
    }
    this.#orphans.set(step.id, { rule: step.rule, client: step.client, settled });
  }

  attach(ctx: StoreContext): void {
    this.#ctx = ctx;
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

  recordFailure(rule: FailureRule, client: string, jitterMs: number): Promise<FailureResult> {
    return this.#enqueue(
      rule,
      client,
      `${rule.jail}${SEP}${client}`,
      'f',
      '',
      jitterMs,
    ) as Promise<FailureResult>;
  }

  reserve(rule: FailureRule, client: string, id: string, holdMs: number): Promise<Reservation> {
    const key = `${rule.jail}${SEP}${client}`; // built once per step, for every table it is looked up in
    const held = this.#held.size === 0 ? undefined : this.#held.get(key);
    if (held !== undefined && !this.#p.link.degraded) {
      if (held.untilMs > Date.now() && (held.packed === '' || held.packed === this.#rule(rule)))
        return Promise.resolve(held.answer);
      this.#held.delete(key);
    }
    return this.#enqueue(rule, client, key, 'r', id, holdMs) as Promise<Reservation>;
  }

  settle(
    rule: FailureRule,
    client: string,
    id: string,
    failed: boolean,
    jitterMs: number,
  ): Promise<FailureResult | null> {
    const key = `${rule.jail}${SEP}${client}`;
    this.#unhold(key); // a slot frees (or a ban comes): ask again
    // Empty but after a missed deadline: a settle looks no further.
    const orphan = this.#orphans.size === 0 ? undefined : this.#orphans.get(id);
    if (orphan !== undefined) {
      // Settled here while Redis is away: its slot there is released once Redis answers.
      // Otherwise this settle goes to Redis and frees it (should it fail, fail() notes it again).
      if (this.#p.link.degraded) orphan.settled = true;
      else this.#orphans.delete(id);
    }
    if (this.#localIds.size > 0 && this.#localIds.delete(id) && !this.#p.link.degraded) {
      // Reserved in this process during an outage, settled after it: the local slot is freed too,
      // or it would hold this client's budget in the next outage (a clean user made to wait).
      void this.#p.fallback.local.settle?.(rule, client, id, false, 0).catch(() => {});
    }
    return this.#enqueue(
      rule,
      client,
      key,
      failed ? 'S' : 's',
      id,
      jitterMs,
    ) as Promise<FailureResult | null>;
  }

  async recordPardon(jail: string, client: string, forMs: number): Promise<void> {
    this.#unhold(`${jail}${SEP}${client}`); // the threshold changes
    const { link } = this.#p;
    if (!link.degraded) {
      try {
        await link.call(() => this.#p.lines.hot.jkRecordPardon(this.#p.keys.pardon(client, jail), forMs));
        return;
      } catch (error) {
        link.fail('recordPardon', error);
      }
    }
    await this.#p.fallback.local.recordPardon(jail, client, forMs);
  }

  #heldLocally(id: string): void {
    if (this.#localIds.size >= HELD_CAP * 10) this.#localIds.clear(); // abandoned ones: their slots expire anyway
    this.#localIds.add(id);
  }

  /** An operator's ban or unban changed what Redis would answer: remembered refusals are dropped. */
  forget(): void {
    this.#held.clear();
  }

  /** True while a call for (jail, client) is out or queued here. */
  busy(jail: string, client: string): boolean {
    // Asked for every ban a load reads (a million): no key built while nothing is out.
    return this.#talks.size > 0 && this.#talks.has(`${jail}${SEP}${client}`);
  }

  // ------------------------------------------------------------- the conversation

  /** `key`: `jail\0client`, the conversation's. */
  #enqueue(
    rule: FailureRule,
    client: string,
    key: string,
    kind: Step['kind'],
    id: string,
    n: number,
  ): Promise<Answer> {
    let talk = this.#talks.get(key);
    if (talk === undefined) {
      const shard = shardOf(client);
      talk = {
        jail: rule.jail,
        client,
        key,
        shard,
        lane: this.#perShard ? shard : 0,
        steps: [],
        taken: NONE,
        busy: false,
        out: false,
        deferred: 0,
        since: 0,
      };
      this.#talks.set(key, talk);
    }
    const steps = talk.steps;
    const packed = this.#rule(rule);
    const answer = new Promise<Answer>((resolve, reject) =>
      steps.push({ kind, rule, client, packed, id, n, resolve, reject }),
    );
    // A settle nobody waits for may linger for company; a reservation or a failure is waited for
    // (a failure holds its client's next request, kit.ready()), as is a settle that may ban.
    const urgent = (kind !== 's' && kind !== 'S') || (this.#crowded.size > 0 && this.#crowded.has(key));
    if (!talk.busy) {
      talk.busy = true;
      talk.since = performance.now();
      this.#batch.add(talk.lane, talk, urgent);
    } else if (urgent && !talk.out) this.#batch.hurry(talk.lane);
    return answer;
  }

  /** The conversation has nothing queued or out: it ends. */
  #idle(talk: Talk): void {
    talk.busy = false;
    this.#talks.delete(talk.key);
  }

  /** After a call: the conversation goes back in the batcher while steps wait, or ends. */
  #next(talk: Talk): void {
    if (talk.steps.length === 0) {
      this.#idle(talk);
      return;
    }
    talk.since = performance.now();
    this.#batch.add(talk.lane, talk, this.#waitedFor(talk));
  }

  /** True when someone waits for a step of the conversation: not only settles that may linger. */
  #waitedFor(talk: Talk): boolean {
    if (this.#crowded.size > 0 && this.#crowded.has(talk.key)) return true;
    for (const step of talk.steps) if (step.kind !== 's' && step.kind !== 'S') return true;
    return false;
  }

  /** Driver: the steps for the call being built (those of one rule, MAX_STEPS at most), added to it. */
  take(talk: Talk, call: Call): number {
    const waiting = talk.steps;
    if (waiting.length === 0) {
      this.#idle(talk);
      return 0;
    }
    if (call.mayDefer && talk.deferred < DEFER_CALLS && !this.#waitedFor(talk) && this.lingerLeft(talk) > 0) {
      talk.deferred++;
      return DEFER;
    }
    talk.deferred = 0;
    const first = waiting[0] as Step;
    // A run of reservations longer than the highest threshold cannot all be admitted: one past
    // it is sent (it is refused), the rest wait and get its refusal (answer()) without a call.
    const cap = Math.min(MAX_STEPS, Math.max(first.rule.maxRetry, first.rule.pardonMaxRetry) + 1);
    let cut = 0;
    let run = 0;
    while (cut < waiting.length && cut < MAX_STEPS) {
      const step = waiting[cut] as Step;
      if (step.packed !== first.packed) break;
      if (step.kind === 'r') {
        if (run === cap) break;
        run++;
      } else run = 0;
      cut++;
    }
    const steps = cut === waiting.length ? waiting : waiting.slice(0, cut);
    talk.steps = cut === waiting.length ? [] : waiting.slice(cut);
    talk.taken = steps;
    talk.out = true;
    if (call.prefix === '') {
      const recidive = first.rule.recidive?.jail ?? 'recidive';
      for (const k of this.#p.keys.conversation(talk.shard, talk.client, talk.jail, recidive))
        call.keys.push(k);
    }
    // The group's line of the plan: the rule's index in the call, the shard, then per step its
    // kind, its number and its id (`r60000=<id>`); the client goes apart (any text).
    let line = `${call.rule(talk.jail, first.packed)} ${talk.shard}`;
    for (const step of steps) line += ` ${step.kind}${step.n}=${planId(step.id)}`;
    call.plan += `${line}\n`;
    call.clients.push(talk.client);
    return steps.length;
  }

  /** Driver: how long a deferred conversation's settles may linger still. */
  lingerLeft(talk: Talk): number {
    return LINGER_MS - (performance.now() - talk.since);
  }

  /** Driver: the call answered; each step gets its answer, in order. */
  answer(talk: Talk, raw: unknown): void {
    const steps = talk.taken;
    talk.taken = NONE;
    talk.out = false;
    const replies = Array.isArray(raw) ? raw : [];
    let last: Answer = null;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as Step;
      try {
        last = this.#answer(talk, step, replies[i]);
        step.resolve(last);
      } catch (error) {
        step.reject(error);
      }
    }
    const lastStep = steps[steps.length - 1] as Step;
    if (lastStep.kind === 'r' && last !== null && !(last as Reservation).admitted) {
      // The reservations queued right after a refused one, with nothing between to free a
      // slot, are refused the same way without a call.
      const rest = talk.steps;
      let k = 0;
      while (
        k < rest.length &&
        (rest[k] as Step).kind === 'r' &&
        (rest[k] as Step).packed === lastStep.packed
      ) {
        (rest[k] as Step).resolve(last);
        k++;
      }
      if (k > 0) talk.steps = rest.slice(k);
    }
    // Reservations queued behind this call, for a client now known banned: refused without one.
    const held = this.#held.get(talk.key);
    if (held !== undefined && held.answer.ban !== null && talk.steps.length > 0) {
      const rest = talk.steps;
      let k = 0;
      while (k < rest.length && (rest[k] as Step).kind === 'r') {
        (rest[k] as Step).resolve(held.answer);
        k++;
      }
      if (k > 0) talk.steps = rest.slice(k);
    }
    this.#next(talk);
  }

  /** Driver: the call failed (or was not sent): the steps are answered locally. */
  fail(talk: Talk, error: unknown, late?: Promise<unknown>): void {
    let steps = talk.taken;
    talk.taken = NONE;
    talk.out = false;
    if (error === NOT_SENT) {
      steps = talk.steps;
      talk.steps = [];
    }
    // Slots Redis may hold for these attempts: a reservation sent (it may run late), a settle that
    // did not get through (sent or not). Released once Redis answers again (release()).
    for (const step of steps) {
      if (step.kind === 's' || step.kind === 'S') this.#orphan(step, true);
      else if (step.kind === 'r' && error !== NOT_SENT) this.#orphan(step, false);
    }
    if (error !== NOT_SENT) {
      if (late !== undefined) this.#late(talk.client, late);
      this.#p.sync.stale(talk.shard); // it may have run: its shard is read again
      this.#p.link.fail(OPERATION[(steps[0] as Step).kind], error);
    }
    void this.#answerLocally(steps).then(() => this.#next(talk));
  }

  /**
   * Whether the client's budget was last seen (nearly) taken: its settles and failures go at once.
   * `key`: the conversation's (`jail\0client`), hashed already.
   */
  #crowd(key: string, crowded: boolean): void {
    if (!crowded) {
      if (this.#crowded.size > 0) this.#crowded.delete(key);
      return;
    }
    if (this.#crowded.size >= HELD_CAP && !this.#crowded.has(key)) {
      let drop = HELD_CAP / 10;
      for (const old of this.#crowded) {
        this.#crowded.delete(old);
        if (--drop === 0) break;
      }
    }
    this.#crowded.add(key);
  }

  /** One step's answer from its element of the reply: versions noted, counts remembered. */
  #answer(talk: Talk, step: Step, raw: unknown): Answer {
    if (step.kind === 's') return null;
    if (step.kind === 'r') {
      const reservation = reservationOf(raw);
      this.#p.fallback.saw(talk.key, reservation.count, reservation.ban !== null);
      this.#crowd(
        talk.key,
        reservation.ban === null &&
          (!reservation.admitted || reservation.count + reservation.inFlight >= reservation.maxRetry),
      );
      if (!reservation.admitted) this.#hold(talk, step.packed, reservation);
      return reservation;
    }
    const reply = failureOf(raw);
    const { result } = reply;
    this.#p.sync.note(talk.shard, reply);
    this.#p.fallback.saw(talk.key, result.count, result.ban !== null);
    if (step.kind === 'f') this.#crowd(talk.key, result.ban === null && result.count + 1 >= result.maxRetry);
    if (result.ban !== null) this.banned(result.ban);
    const totals = totalsOf(this.#p, talk.jail);
    totals.failed++;
    if (result.ban && !result.alreadyBanned) totals.banned++;
    return result;
  }

  /**
   * A ban this instance learned (its own call's answer, a refusal, another instance's
   * announcement): the client's next reservations in its jail are refused with it without a call
   * while it lasts (BAN_HELD_MS at most), so that the attempts of a burst waiting for a slot learn
   * it here, not from Redis one poll at a time. An unban (here, or announced) drops it.
   */
  banned(ban: Ban): void {
    const leftMs = ban.endMs - this.#p.sync.clock.now(); // ban times are Redis time
    if (leftMs <= 0) return;
    const key = `${ban.jail}${SEP}${ban.client}`;
    this.#crowded.delete(key);
    this.#remember(
      key,
      '',
      { admitted: false, ban, count: 0, inFlight: 0, maxRetry: 0 },
      Math.min(leftMs, BAN_HELD_MS),
    );
  }

  /** Another instance lifted a ban: a refusal remembered for it goes. */
  unbanned(ban: Ban): void {
    this.#held.delete(`${ban.jail}${SEP}${ban.client}`);
  }

  /** A refusal remembered for the client (unless a settle for it is already queued). */
  #hold(talk: Talk, packed: string, answer: Reservation): void {
    if (answer.ban !== null) this.banned(answer.ban);
    else if (!talk.steps.some((s) => s.kind !== 'r')) this.#remember(talk.key, packed, answer, RECHECK_MS);
  }

  /** Drops the client's remembered refusal, unless it is a ban (a settle or a pardon lifts none). */
  #unhold(key: string): void {
    if (this.#held.size === 0) return;
    const held = this.#held.get(key);
    if (held !== undefined && held.answer.ban === null) this.#held.delete(key);
  }

  /** A refusal for `forMs`, for the rule packed as `packed` ('' for any rule of the jail: a ban). */
  #remember(key: string, packed: string, answer: Reservation, forMs: number): void {
    if (!this.#held.has(key) && this.#held.size >= HELD_CAP) {
      let drop = HELD_CAP / 10;
      for (const old of this.#held.keys()) {
        this.#held.delete(old);
        if (--drop === 0) break;
      }
    }
    this.#held.set(key, { packed, answer, untilMs: Date.now() + forMs });
  }

  /**
   * A call given up on (past its deadline) may still have run: when its reply comes after all, a
   * ban it made is reported as made here (its announcement's echo is ignored by this instance,
   * which made it).
   */
  #late(client: string, pending: Promise<unknown>): void {
    pending.then(
      (replies) => {
        if (!Array.isArray(replies)) return;
        for (const raw of replies) {
          // A compact answer (an array of numbers) carries no ban: nothing to report.
          if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || 'admitted' in raw) continue;
          let reply: FailureReply;
          try {
            reply = failureOf(raw);
          } catch {
            continue;
          }
          if (typeof reply.result.count !== 'number') continue;
          this.#p.sync.note(shardOf(client), reply);
          const { ban, alreadyBanned, recidive, recidiveDryRun } = reply.result;
          if (ban && !alreadyBanned) this.#ctx?.onBan(ban, 'local');
          if (recidive && !recidiveDryRun) this.#ctx?.onBan(recidive, 'local');
        }
      },
      () => {},
    );
  }

  /** Steps answered while Redis is away: by the local fallback, in their order (or by the policy). */
  async #answerLocally(steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      try {
        step.resolve(await this.#local(step));
      } catch (error) {
        step.reject(error);
      }
    }
  }

  async #local(step: Step): Promise<Answer> {
    const { rule, client, id, n } = step;
    const { fallback, onStoreError } = this.#p;
    switch (step.kind) {
      case 'r': {
        if (onStoreError === 'allow')
          return { admitted: true, ban: null, count: 0, inFlight: 0, maxRetry: rule.maxRetry };
        fallback.seed(rule, client);
        const local = (fallback.local.reserve as NonNullable<typeof fallback.local.reserve>)(
          rule,
          client,
          id,
          n,
        );
        const reservation = await local;
        if (reservation.admitted) this.#heldLocally(id);
        else {
          // Refused here: no settle will ever name this id, so the slot its call may have taken
          // in Redis (run late, where the count was lower) is released once Redis answers.
          const orphan = this.#orphans.get(id);
          if (orphan !== undefined) orphan.settled = true;
        }
        return reservation;
      }
      case 's':
      case 'S':
        if (onStoreError === 'allow') return null;
        if (step.kind === 'S') fallback.seed(rule, client);
        return (await fallback.local.settle?.(rule, client, id, step.kind === 'S', n)) ?? null;
      case 'f':
        if (onStoreError === 'allow') {
          return {
            count: 0,
            maxRetry: rule.maxRetry,
            pardoned: false,
            ban: null,
            alreadyBanned: false,
            ...NOT_COUNTED,
          };
        }
        fallback.seed(rule, client);
        return fallback.local.recordFailure(rule, client, n);
    }
  }
}
