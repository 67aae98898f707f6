import { createHash } from 'node:crypto';
import type { Ban, Clock, StoreContext } from '@jailkeeper/core/store';
import { fromRedis, listOf, type Versioned } from './codec.js';
import { type Keys, SHARDS, shardOf } from './keys.js';
import type { ShardIO, ShardRead } from './shard-io.js';

/**
 * A write-back batch: calls (one shard each, at most RESTORE_CHUNK bans) in one pipeline, up to
 * about this many bans (a few ms of Redis; at 20,000 bans a shard holds about 20, and a call per
 * round trip spent most of the time in round trips). WINDOW batches are in flight on the bulk
 * connection, a new one as soon as one answers: Redis runs a connection's queued calls back to
 * back, so a counted failure on the hot connection waits behind a few ms of them, never behind a
 * round of thousands of bans (rounds of 4,000 bans in lockstep held Redis 80 ms at a time and
 * left it idle between rounds).
 */
const BATCH_BANS = 400;
const WINDOW = 3;
/** How long the restore lease lasts unless renewed (it is renewed while the write-back goes on). */
const LEASE_MS = 2000;
/** While another instance holds the lease: how soon the versions are read again. */
const RECHECK_MS = 100;
/** While another instance holds the lease: how often the lease (one GET) is looked at. */
const LEASE_POLL_MS = 50;
/**
 * Between two reconciles, the versions of WATCH_SHARDS shards this instance holds are looked at
 * every WATCH_MS (one pipeline of a few GETs): a FLUSHALL is noticed within WATCH_MS, not within
 * reconcileInterval (1 s: half of the 2 s a heal of 100,000 bans may take, all of the 1 s at
 * 20,000). A clean request's reservation does not show the shard's epoch, so without it a
 * FLUSHALL under clean traffic waited for the next reconcile.
 */
const WATCH_MS = 100;
const WATCH_SHARDS = 4;
/** Bans per write-back call (one shard each). */
const RESTORE_CHUNK = 200;
/** Bans handled between two turns of the event loop. */
const SLICE = 5000;
/** Bans digested (a line each, sorted, SHA-256) between two turns of the event loop: a few ms. */
const DIGEST_SLICE = 2000;
const SEP = '\u0000';
/**
 * The epoch held for a shard whose restore failed before it was written: never a real epoch, so
 * the next pass finds the shard lost (still absent) or renewed (written since), not in step.
 */
const UNRESTORED = '\u0000unrestored';
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * The pause between two slices of work that no bound waits for (a follower's check of shards
 * another instance restored): about half a core, not a whole one.
 */
const PACE_MS = 8;
const paced = () => new Promise<void>((resolve) => setTimeout(resolve, PACE_MS));
const banKey = (ban: Ban) => `${ban.jail}${SEP}${ban.client}`;

/**
 * A digest of a set of bans (jail, client, end), the same for the same set in any order: SHA-256,
 * so that nobody can make two different sets agree (an attacker picks the addresses banned).
 */
function digestOf(bans: readonly Ban[]): string {
  const lines = bans.map((ban) => `${ban.jail}${SEP}${ban.client}${SEP}${ban.endMs}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('base64');
}

/** The list of `key` in a map of lists, created empty when absent. */
function listIn<K, V>(map: Map<K, V[]>, key: K): V[] {
  let list = map.get(key);
  if (list === undefined) {
    list = [];
    map.set(key, list);
  }
  return list;
}

/** The same ban: client, jail and end. */
const same = (a: Ban, b: Ban) => a.client === b.client && a.jail === b.jail && a.endMs === b.endMs;

/**
 * The bans of `now` (a shard's, as listed again) that `had` (as written) lacks. Two listings of
 * the same table come in the same order, so they are walked side by side (no key built, nothing
 * hashed, per ban); from the first difference, what is left is looked up by key.
 */
function unwritten(now: readonly Ban[], had: readonly Ban[] | undefined): Ban[] {
  if (had === undefined) return [...now];
  let i = 0;
  while (i < now.length && i < had.length && same(now[i] as Ban, had[i] as Ban)) i++;
  if (i === now.length) return [];
  const keys = new Set<string>();
  for (let j = i; j < had.length; j++) keys.add(endKey(had[j] as Ban));
  const out: Ban[] = [];
  for (let j = i; j < now.length; j++) if (!keys.has(endKey(now[j] as Ban))) out.push(now[j] as Ban);
  return out;
}

const endKey = (ban: Ban) => `${ban.jail}${SEP}${ban.client}${SEP}${ban.endMs}`;

function parseVersion(v: string | null): { epoch: string; seq: number } | null {
  if (v === null) return null;
  const at = v.lastIndexOf(':');
  return at === -1 ? null : { epoch: v.slice(0, at), seq: Number(v.slice(at + 1)) };
}

/**
 * Keeps this instance's bans in step with Redis, in batches. Each shard has a version (epoch,
 * seq): pub/sub messages and script replies move this instance's copy of it; one read of the
 * 1,024 versions (every `reconcileInterval`, and at once after a reconnection or a resubscribe)
 * shows the shards whose changes it missed, which are read again, and nothing else. A shard that
 * disappeared or changed epoch while this instance enforces its bans was lost (a restart empty,
 * FLUSHALL, eviction): its bans are written back as they were, idempotently.
 */
export class BanSync {
  readonly #io: ShardIO;
  readonly #keys: Keys;
  readonly #origin: string;
  readonly #clock: Clock;
  readonly #historyMs: number;
  #ctx: StoreContext | undefined;
  /** The version this instance is in step with, per shard (null epoch: empty, or never read). */
  readonly #epochs: (string | null)[] = new Array(SHARDS).fill(null);
  readonly #seqs = new Float64Array(SHARDS);
  /**
   * 1 for a shard this instance restored (or found renewed) and has not yet read whole: a ban of
   * its own that the shard lacks was lost with it, not lifted; it is written back, never dropped.
   */
  readonly #renew = new Uint8Array(SHARDS);
  /** Seqs seen ahead of a gap (a message that arrived before an earlier one). */
  readonly #ahead = new Map<number, Set<number>>();
  /** The newest version seen from any source: a snapshot older than it is stale. */
  readonly #seenEpoch: (string | null)[] = new Array(SHARDS).fill(null);
  readonly #seenSeq = new Float64Array(SHARDS);
  /**
   * True while this instance has a call out for (jail, client): a ban read from a shard meanwhile
   * may be that call's own, and is left to its reply (reported as made here, not as remote).
   */
  #inFlight: (jail: string, client: string) => boolean = () => false;
  #offsetMs = 0;
  /**
   * True while another instance holds the restore lease: this one waits for it to end with one GET
   * of the lease every LEASE_POLL_MS, and reads the versions then, not on each restore message.
   */
  #waitingLease = false;
  #running: Promise<void> | undefined;
  #again = false;
  /** A pass has run to its end (see pass()). */
  #loaded = false;

  /** A pass started by the sync itself (a restore announced, a lease held elsewhere) failed. */
  readonly #onError: (error: unknown) => void;
  #later: NodeJS.Timeout | undefined;
  #watch: NodeJS.Timeout | undefined;
  /** The next shard the watch looks at (it goes round the 1,024). */
  #watchFrom = 0;
  #watching = false;
  #closed = false;

  constructor(
    io: ShardIO,
    keys: Keys,
    options: { origin: string; historyMs: number; onError: (error: unknown) => void },
  ) {
    this.#io = io;
    this.#keys = keys;
    this.#origin = options.origin;
    this.#historyMs = options.historyMs;
    this.#onError = options.onError;
    this.#clock = { now: () => Date.now() + this.#offsetMs };
  }

  /** Redis time as this instance estimates it (the offset measured against `TIME`). */
  get clock(): Clock {
    return this.#clock;
  }

  start(ctx: StoreContext): void {
    this.#ctx = ctx;
    this.#watch = setInterval(() => void this.#watchLoss(), WATCH_MS);
    this.#watch.unref();
  }

  /**
   * A few shards this instance is in step with, looked at between reconciles (see WATCH_MS): one
   * that is gone (or in another epoch) means Redis lost data, and a pass starts now. Quiet while a
   * pass runs, while another instance restores, and when Redis is away (the probe's business); a
   * failed look is left to the next reconcile.
   */
  async #watchLoss(): Promise<void> {
    if (this.#watching || this.#running || this.#waitingLease || this.#closed) return;
    const shards: number[] = [];
    for (let k = 0; k < SHARDS && shards.length < WATCH_SHARDS; k++) {
      const n = (this.#watchFrom + k) % SHARDS;
      if (this.#epochs[n] !== null) shards.push(n);
    }
    if (shards.length === 0) return;
    this.#watchFrom = ((shards[shards.length - 1] as number) + 1) % SHARDS;
    this.#watching = true;
    try {
      const versions = await this.#io.versionsOf(shards);
      if (versions === null) return;
      for (const [k, n] of shards.entries()) {
        const v = parseVersion(versions[k] ?? null);
        const known = this.#epochs[n];
        if (known !== null && (v === null || v.epoch !== known)) {
          this.#passSoon(0);
          return;
        }
      }
    } catch {
      // the next reconcile looks at every shard anyway
    } finally {
      this.#watching = false;
    }
  }

  /** Stops the passes it schedules itself. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#later);
    clearInterval(this.#watch);
  }

  /** A pass in `ms`, unless one is already due. */
  #passSoon(ms: number): void {
    if (this.#later !== undefined || this.#closed) return;
    this.#later = setTimeout(() => {
      this.#later = undefined;
      if (!this.#closed) this.pass().catch(this.#onError);
    }, ms);
    this.#later.unref();
  }

  /** See #inFlight (counting.ts answers it). */
  followCalls(inFlight: (jail: string, client: string) => boolean): void {
    this.#inFlight = inFlight;
  }

  /** A call in shard `n` failed and may have changed it unseen: the next pass reads it again. */
  stale(n: number): void {
    this.#seqs[n] = -1;
  }

  // ------------------------------------------------------------- versions

  /** A script reply or a message moved shard `n` to this version. */
  note(n: number, v: Versioned): void {
    if (v.epoch === undefined) return;
    let moved = false;
    for (const seq of v.seqs) {
      if (this.#seenEpoch[n] !== v.epoch || seq > (this.#seenSeq[n] as number)) {
        this.#seenEpoch[n] = v.epoch;
        this.#seenSeq[n] = seq;
      }
      if (this.#epochs[n] === null && this.#seqs[n] === 0 && seq === 1) this.#epochs[n] = v.epoch; // a new shard, from its first change
      if (this.#epochs[n] !== v.epoch) {
        // Another epoch: the shard was recreated since this instance read it (FLUSHALL, a restart
        // empty, eviction), so others may be lost too: a pass now, not at the next reconcile.
        if (this.#epochs[n] !== null) this.#passSoon(0);
        continue;
      }
      if (seq > (this.#seqs[n] as number)) this.#aheadOf(n).add(seq);
      moved = true;
    }
    // Once per reply, not per seq: a restore's reply names a hundred seqs, and #advance looks at
    // every seq held ahead (per seq, 5 million steps for 100,000 bans written back).
    if (moved) this.#advance(n);
  }

  /** Moves shard `n`'s version over the seqs seen in a row after it. */
  #advance(n: number): void {
    const ahead = this.#ahead.get(n);
    if (ahead === undefined) return;
    for (const s of ahead) if (s <= (this.#seqs[n] as number)) ahead.delete(s);
    while (ahead.delete((this.#seqs[n] as number) + 1)) this.#seqs[n] = (this.#seqs[n] as number) + 1;
    if (ahead.size === 0) this.#ahead.delete(n);
  }

  #aheadOf(n: number): Set<number> {
    let set = this.#ahead.get(n);
    if (set === undefined) {
      set = new Set();
      this.#ahead.set(n, set);
    }
    return set;
  }

  /** A message on the channel: another instance's ban or unban, or an ignore-list edit. */
  onMessage(message: string): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    let event: { type?: string; ban?: Ban; entries?: unknown; origin?: string; epoch?: string; seq?: number };
    try {
      event = JSON.parse(message);
    } catch {
      return; // a malformed message on our channel is not ours to act on
    }
    if (event.type === 'ignore-add' || event.type === 'ignore-remove') {
      const entries = listOf<unknown>(event.entries).filter((e): e is string => typeof e === 'string');
      ctx.onIgnore?.(event.type === 'ignore-add' ? 'add' : 'remove', entries);
      return;
    }
    if (event.type === 'restored') {
      // Another instance wrote back what Redis lost: read the shards it renewed, soon (one pass
      // for a burst of these messages, one per restore call).
      // While the restorer holds the lease, its end is what is waited for (see #waitingLease).
      if (event.origin !== this.#origin && !this.#waitingLease) this.#passSoon(20);
      return;
    }
    const raw = event.ban;
    if (raw === undefined || typeof raw.client !== 'string' || typeof raw.jail !== 'string') return;
    // Our own change comes back too: its reply says it (and reports it as made here, once).
    if (event.origin === this.#origin) return;
    const ban = fromRedis(raw);
    if (event.type === 'ban') ctx.onBan(ban, 'remote');
    else if (event.type === 'unban') ctx.onUnban(ban, 'remote');
    else return;
    if (typeof event.seq === 'number')
      this.note(shardOf(ban.client), { epoch: event.epoch, seqs: [event.seq] });
  }

  // ------------------------------------------------------------- a pass

  /**
   * Reads the versions and catches up: shards lost are written back, shards changed unseen are
   * read again. One at a time; a call during a pass runs one more pass after it.
   */
  pass(origin: 'restored' | 'remote' = 'remote'): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          // The first pass is the load, whoever asked for it: the bans Redis held before this
          // instance started are restored, not remote. (A client that was not ready yet when the
          // keeper started makes its 'ready' ask for a pass before init's own: the load then ran
          // as remote, and a million bans were each remembered as a refusal, 1.3 s of CPU.)
          await this.#pass(this.#loaded ? origin : 'restored');
          this.#loaded = true;
        } while (this.#again);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #pass(origin: 'restored' | 'remote'): Promise<void> {
    if (this.#waitingLease) {
      if (await this.#io.leasedElsewhere(this.#origin)) {
        this.#passSoon(LEASE_POLL_MS);
        return;
      }
      this.#waitingLease = false;
    }
    const versions = await this.versions();
    const read: number[] = [];
    const lost: number[] = [];
    /** Shards recreated (a new epoch) since this instance read them: read, and what they lack written back. */
    const renewed = new Set<number>();
    for (let n = 0; n < SHARDS; n++) {
      const v = parseVersion(versions[n] ?? null);
      const known = this.#epochs[n];
      if (v === null) {
        if (known !== null) lost.push(n);
      } else if (known === null) read.push(n);
      else if (v.epoch !== known) {
        this.#renew[n] = 1;
        read.push(n);
      } else if (v.seq !== this.#seqs[n] && !this.#covered(n, v.seq)) read.push(n);
    }
    for (const n of read) if (this.#renew[n] === 1) renewed.add(n);
    if ((lost.length > 0 || renewed.size > 0) && (await this.#io.leasedElsewhere(this.#origin))) {
      // Another instance is writing back what Redis lost: this one keeps enforcing what it knows
      // and waits for the lease to end, then reads the renewed shards at once (not piecemeal, as
      // they fill: each read would cost this process and Redis what the restore is writing).
      this.#waitingLease = true;
      this.#passSoon(LEASE_POLL_MS);
      return;
    }
    if (lost.length > 0) await this.#restore(lost);
    if (renewed.size > 0) {
      const whole = await this.#wholeByDigest(renewed, versions);
      if (whole.size > 0) {
        for (let k = read.length - 1; k >= 0; k--) if (whole.has(read[k] as number)) read.splice(k, 1);
        for (const n of whole) renewed.delete(n);
      }
    }
    if (read.length > 0) await this.#read(read, origin, renewed);
  }

  /**
   * Shards that disappeared while this instance enforces bans of theirs (a restart empty,
   * FLUSHALL, eviction): written back by one instance, the holder of the restore lease; the others
   * keep enforcing, wait for the lease to end, then find the shards renewed (and read them).
   */
  async #restore(lost: readonly number[]): Promise<void> {
    // The lease first: the instances that do not get it do not even list their bans.
    if (!(await this.#io.lease(this.#origin, LEASE_MS))) {
      this.#waitingLease = true;
      this.#passSoon(LEASE_POLL_MS);
      return;
    }
    const shards = new Set(lost);
    /** The bans written, by shard: their histories follow. */
    const written = new Map<number, Ban[]>();
    try {
      let batch = await this.#localByShard(shards);
      // From a new epoch (or none, when none of its bans is here): the restore's own replies move
      // these shards' versions from seq 1.
      for (const n of lost) this.#forget(n);
      let left = 1;
      // Then the bans made or learned here while it listed and wrote (listed again: no read of
      // what was just written), until a listing finds none: every ban this instance enforces in
      // these shards has then been written (or found held), and the shards are whole. The
      // listing is compared with what was written shard by shard, in order (see unwritten): a
      // key built per ban, 100,000 of them, was a block of the holder's event loop and more of
      // its CPU than the write itself.
      for (let round = 0; left > 0 && round < 5; round++) {
        await this.#writeBatches(this.#batchesOf(batch), true, false, (n, bans) => {
          listIn(written, n).push(...bans);
        });
        const mine = await this.#localByShard(shards);
        batch = new Map();
        left = 0;
        for (const [n, list] of mine) {
          const lacking = unwritten(list, written.get(n));
          if (lacking.length === 0) continue;
          batch.set(n, lacking);
          left += lacking.length;
        }
      }
      if (left === 0) {
        // Whole (no await since the last listing): from now on a ban missing from them was lifted.
        // A shard whose version this instance did not follow from seq 1 (another instance wrote
        // it meanwhile) is read by the next pass, as renewed.
        for (const n of lost) if (this.#epochs[n] !== null) this.#renew[n] = 0;
      } else for (const n of lost) this.stale(n);
    } catch (error) {
      // A call missed its deadline (a busy Redis) or the link failed: the shards not yet written
      // must not stay forgotten (a forgotten shard that is still absent looks in step), or what
      // they held would never be restored by this instance, nor by the others once they had
      // failed the same way (seen: 20% of 100,000 bans left out of Redis for good).
      for (const n of lost) if (this.#epochs[n] === null) this.#epochs[n] = UNRESTORED;
      throw error;
    } finally {
      await this.#io.lease(this.#origin, 0).catch(() => {});
    }
    // The versions once more: a shard changed meanwhile by another instance is read then.
    this.#passSoon(RECHECK_MS);
    // Then the histories of the bans written (idempotent: a count is raised, never lowered). Until
    // they are back, a new ban of one of these clients (in another jail: it is banned in this one)
    // counts from what is left of its history: a second or two, once per data loss.
    await this.#writeHistory(written);
  }

  /**
   * Renewed shards that another instance restored whole (see the digest key in keys.ts) and that
   * hold exactly the bans this instance enforces there: in step at the version read, without
   * reading them (100,000 bans: no 100,000 bans read back by each instance after a restore). Any
   * difference (a ban one side lacks, a ban ended since, a change after the restore) leaves the
   * shard to be read.
   */
  async #wholeByDigest(
    renewed: ReadonlySet<number>,
    versions: readonly (string | null)[],
  ): Promise<Set<number>> {
    const whole = new Set<number>();
    const digests = await this.#io.digests([...renewed]);
    const candidates = new Set<number>();
    for (const [n, d] of digests) if (d !== null) candidates.add(n);
    if (candidates.size === 0) return whole;
    // Paced: this instance enforced these bans throughout, and the messages of new ones apply at
    // once; whether it is in step at the restore's version is no bound's path. At setImmediate's
    // pace, the three instances of a fleet listed and hashed 100,000 bans each while the restore
    // went on, a core and a half of work on a 2-core machine, just when the fleet had its slowest
    // clean logins (redis-recovery-fleet.test.ts with JK_DEBUG_HEAL).
    const local = await this.#localByShard(candidates, paced);
    const now = this.#clock.now();
    let hashed = 0;
    for (const n of candidates) {
      // In slices: 100,000 bans sorted and hashed at once held a follower's event loop 100 ms or
      // more, with its clean requests behind it.
      if (hashed >= DIGEST_SLICE) {
        hashed = 0;
        await paced();
      }
      hashed += local.get(n)?.length ?? 0;
      const v = parseVersion(versions[n] ?? null);
      if (v === null) continue;
      if (this.#seenEpoch[n] === v.epoch && (this.#seenSeq[n] as number) > v.seq) continue; // changed since
      const mine = (local.get(n) ?? []).filter((ban) => ban.endMs > now);
      if (digests.get(n) !== `${v.epoch}:${v.seq}:${digestOf(mine)}`) continue;
      this.#epochs[n] = v.epoch;
      this.#seqs[n] = v.seq;
      this.#renew[n] = 0;
      this.#advance(n);
      whole.add(n);
    }
    return whole;
  }

  /** Shard `n` is known empty (or about to be written from nothing): no version held. */
  #forget(n: number): void {
    this.#renew[n] = 1;
    this.#epochs[n] = null;
    this.#seqs[n] = 0;
    this.#ahead.delete(n);
  }

  /** True when the seqs between this instance's version and `seq` were all seen: in step. */
  #covered(n: number, seq: number): boolean {
    this.#advance(n);
    return this.#seqs[n] === seq;
  }

  /** The 1,024 versions; Redis' TIME with them moves the clock offset. */
  async versions(): Promise<(string | null)[]> {
    const { versions, time, sent } = await this.#io.versions();
    this.#measure(time, sent);
    return versions;
  }

  /** The offset of Redis' clock, from one TIME and the round trip around it. */
  #measure(time: [string, string] | undefined, started: number): void {
    const ended = Date.now();
    if (time === undefined || ended - started > 250) return; // too slow to be precise
    const redisMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    this.#offsetMs = Math.round(redisMs - (started + ended) / 2);
  }

  // ------------------------------------------------------------- reading shards

  /**
   * This instance's active bans in the given shards (read in slices: a million is no block). A
   * page of the keeper's index at a time where it offers pages: each instance lists its 100,000
   * bans at least once per heal, and the iterator's generators took about half of that listing's
   * CPU (bench/redis-heal.bench.js), while the machine's cores were what the clean requests
   * waited for.
   */
  async #localByShard(
    shards: ReadonlySet<number>,
    between: () => Promise<void> = turn,
  ): Promise<Map<number, Ban[]>> {
    const out = new Map<number, Ban[]>();
    const ctx = this.#ctx;
    if (ctx?.activeBansPage !== undefined) {
      let after: number | undefined;
      for (;;) {
        const page = ctx.activeBansPage(after, SLICE);
        for (const ban of page.bans) {
          const n = shardOf(ban.client);
          if (shards.has(n)) listIn(out, n).push(ban);
        }
        if (page.next === undefined) return out;
        after = page.next;
        await between();
      }
    }
    let seen = 0;
    for (const ban of ctx?.activeBans?.() ?? []) {
      const n = shardOf(ban.client);
      if (shards.has(n)) listIn(out, n).push(ban);
      if (++seen % SLICE === 0) await between();
    }
    return out;
  }

  /**
   * Reads shards and brings this instance in step: bans it lacks are applied, bans it holds that
   * the shard no longer has (lifted while a message was missed) are dropped. A snapshot older
   * than a version already seen is left for the next pass.
   */
  async #read(shards: number[], origin: 'restored' | 'remote', renewed: ReadonlySet<number>): Promise<void> {
    const local = await this.#localByShard(new Set(shards));
    const missing: Ban[] = [];
    await this.#io.read(shards, (shard) => {
      this.#apply(shard, origin, local, renewed, missing);
    });
    if (missing.length === 0) return;
    // A renewed shard lacks bans this instance enforces: written back, unless another instance
    // holds the lease (its restore is under way): then the shard is read again a little later.
    if (await this.#io.lease(this.#origin, LEASE_MS)) {
      try {
        await this.writeBack(missing, true);
      } catch (error) {
        // Read again by the next pass, and what they lack written back then.
        for (const ban of missing) this.stale(shardOf(ban.client));
        throw error;
      } finally {
        await this.#io.lease(this.#origin, 0).catch(() => {});
      }
    } else {
      for (const ban of missing) this.stale(shardOf(ban.client));
      this.#waitingLease = true;
      this.#passSoon(LEASE_POLL_MS);
    }
  }

  #apply(
    shard: ShardRead,
    origin: 'restored' | 'remote',
    local: Map<number, Ban[]>,
    renewed: ReadonlySet<number>,
    missing: Ban[],
  ): void {
    const ctx = this.#ctx as StoreContext;
    const { n, bans } = shard;
    const v = parseVersion(shard.version);
    if (v !== null && this.#seenEpoch[n] === v.epoch && (this.#seenSeq[n] as number) > v.seq) return; // stale
    const now = this.#clock.now();
    const mine = local.get(n);
    const present = mine === undefined ? undefined : new Set<string>();
    for (const ban of bans) {
      if (ban.endMs <= now) continue;
      present?.add(banKey(ban));
      if (!ctx.isIgnored(ban.client) && !this.#inFlight(ban.jail, ban.client)) ctx.onBan(ban, origin);
    }
    const isRenewed = renewed.has(n);
    const lacked = missing.length;
    for (const ban of mine ?? []) {
      // Ended bans end by themselves; a ban about to end may already be tidied away in Redis.
      if (ban.endMs <= now + 1000 || present?.has(banKey(ban))) continue;
      // In a shard recreated since it was read, a ban it lacks was lost with it, not lifted.
      if (isRenewed) missing.push(ban);
      else ctx.onUnban(ban, 'remote');
    }
    if (missing.length === lacked)
      this.#renew[n] = 0; // whole: from now on a missing ban was lifted
    else {
      // It lacks bans of this instance: not in step until they are written back and it is read
      // whole. Whatever stops that write (the lease held elsewhere, the write or a later batch of
      // this read failing) leaves it to the next pass: read again, or restored if it is absent. A
      // null epoch on an absent shard looked in step, and its bans were never written back by
      // anyone (seen: three whole shards, 262 bans, after renewed shards were read once Redis had
      // lost its data again).
      this.#epochs[n] = v?.epoch ?? UNRESTORED;
      this.#seqs[n] = -1;
      this.#ahead.delete(n);
      return;
    }
    this.#epochs[n] = v?.epoch ?? null;
    this.#seqs[n] = v?.seq ?? 0;
    if (v === null) this.#ahead.delete(n);
    else this.#advance(n);
  }

  // ------------------------------------------------------------- writing back

  /**
   * Writes bans back as they were, one call per shard (and per RESTORE_CHUNK bans), the calls in
   * pipelines of about BATCH_BANS bans, WINDOW pipelines in flight: after Redis lost them, or for
   * bans made while it was away. A ban Redis already holds is never rewritten.
   */
  async writeBack(bans: readonly Ban[], leased = false): Promise<void> {
    const byShard = new Map<number, Ban[]>();
    for (const ban of bans) listIn(byShard, shardOf(ban.client)).push(ban);
    await this.#writeBatches(this.#batchesOf(byShard), leased, true);
  }

  /**
   * Writes the batches (see writeBack); `withHistory` false leaves the clients' histories to
   * #writeHistory (a restore: the bans first). `each` is told of every call's bans before it is sent.
   */
  async #writeBatches(
    batches: [number, Ban[]][][],
    leased: boolean,
    withHistory: boolean,
    each?: (n: number, bans: Ban[]) => void,
  ): Promise<void> {
    let renewedAt = Date.now();
    await this.#inWindow(batches, async (batch) => {
      if (leased && Date.now() - renewedAt > LEASE_MS / 4) {
        renewedAt = Date.now();
        await this.#io.lease(this.#origin, LEASE_MS);
      }
      const calls = batch.map(([n, list]) => {
        each?.(n, list);
        return { n, bans: list, digest: digestOf(list) };
      });
      const versions = await this.#io.restore(
        calls,
        this.#keys.channel,
        this.#origin,
        this.#historyMs,
        withHistory,
      );
      for (const [k, [n]] of batch.entries()) this.note(n, versions[k] as Versioned);
    });
  }

  /** The histories of bans written back without them (#writeBatches' withHistory false). */
  async #writeHistory(byShard: ReadonlyMap<number, readonly Ban[]>): Promise<void> {
    await this.#inWindow(this.#batchesOf(byShard), (batch) =>
      this.#io.restoreHistory(
        batch.map(([n, list]) => ({ n, bans: list })),
        this.#historyMs,
      ),
    );
  }

  /**
   * Bans still active, by shard, in calls of at most RESTORE_CHUNK (one Cluster slot each), the
   * calls in batches of about BATCH_BANS bans (one pipeline, one Cluster node each).
   */
  #batchesOf(byShard: ReadonlyMap<number, readonly Ban[]>): [number, Ban[]][][] {
    const now = this.#clock.now();
    const open = new Map<string, { calls: [number, Ban[]][]; size: number }>();
    const out: [number, Ban[]][][] = [];
    for (const [n, all] of byShard) {
      const list = all.filter((ban) => ban.endMs > now);
      for (let i = 0; i < list.length; i += RESTORE_CHUNK) {
        const call: [number, Ban[]] = [n, list.slice(i, i + RESTORE_CHUNK)];
        const node = this.#io.nodeOf(n);
        let batch = open.get(node);
        if (batch === undefined) {
          batch = { calls: [], size: 0 };
          open.set(node, batch);
          out.push(batch.calls);
        }
        batch.calls.push(call);
        batch.size += call[1].length;
        if (batch.size >= BATCH_BANS) open.delete(node);
      }
    }
    return out;
  }

  /** Runs `each` over the batches, WINDOW at a time; the first failure stops the rest and is thrown. */
  async #inWindow<T>(batches: T[], each: (batch: T) => Promise<void>): Promise<void> {
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (!failed && next < batches.length) {
        const batch = batches[next++] as T;
        try {
          await each(batch);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, batches.length) }, worker));
  }
}
