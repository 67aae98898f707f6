import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Targets } from '../engine/admission.js';
import type { Banned } from '../engine/ban-index.js';
import type { RequestInfo } from '../engine/events.js';
import type { KeyFacts, ResolvedJail } from '../engine/options.js';
import { isExempt, jailWatches, targetsRoutes, type Where } from '../engine/rules.js';
import type { Slots } from '../engine/slots.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';
import { keyFacts, keyOf } from './keys.js';
import type { AdapterKit } from './kit.js';
import { appendField, bannedItem, policyItem, remainingItem } from './rate-limit-headers.js';
import { closeOwner, onResponseClose } from './response-close.js';
import { NO_JAILS, type RouteJails } from './route-config.js';

/**
 * True while a request's body is still arriving: it declared one, and the parser has not seen its
 * end, and the unread part has not filled the request's buffer (beyond that, nothing more is
 * read until someone reads it, so waiting longer would wait for ever). `socket` and `headers`: the
 * request's.
 *
 * Few reads of the request itself: on Express, whose requests change prototype on every request,
 * each costs V8 a lookup of its own (about 2,000 instructions under callgrind), so the stream's
 * state is read once and its fields there (what `readableLength`, `readableHighWaterMark` and
 * `readableEnded` read).
 */
function bodyPending(req: IncomingMessage, socket: Duplex, headers: IncomingMessage['headers']): boolean {
  if (req.complete) return false;
  // A request injected in process (Fastify's inject, light-my-request) has no network socket: its
  // body is in memory, handed over when read, so it arrives the moment anyone reads it.
  if (!(socket instanceof Socket)) return false;
  if (headers['transfer-encoding'] === undefined) {
    const length = headers['content-length'];
    if (length === undefined || length === '0') return false;
  }
  const state = (req as unknown as { _readableState?: ReadableState })._readableState;
  if (state === undefined) return req.readableLength < req.readableHighWaterMark && !req.readableEnded;
  return state.length < state.highWaterMark && !state.endEmitted;
}

/** The fields of a Readable's state that its `readableLength`, `readableHighWaterMark` and `readableEnded` read. */
interface ReadableState {
  readonly length: number;
  readonly highWaterMark: number;
  readonly endEmitted: boolean;
}

/**
 * The RateLimit header fields of the jails among `slots` that show them (`headers: 'ratelimit'`):
 * what the reservations answered, so they cost no store call of their own.
 */
function showRemaining(res: ServerResponse, slots: Slots): void {
  let policy: string | undefined;
  let remaining: string | undefined;
  for (let i = 0; i < slots.jails.length; i++) {
    const jail = slots.jails[i] as ResolvedJail;
    const left = slots.left[i];
    if (!jail.headers || left === undefined) continue;
    policy = policy === undefined ? policyItem(jail) : `${policy}, ${policyItem(jail)}`;
    const item = remainingItem(jail, left);
    remaining = remaining === undefined ? item : `${remaining}, ${item}`;
  }
  if (policy === undefined || remaining === undefined) return;
  appendField(res, 'ratelimit-policy', policy);
  appendField(res, 'ratelimit', remaining);
}

/**
 * `res.headersSent` without its getter, which reads `_header` again (one more cache miss on
 * Express's responses, see `bodyPending`).
 */
function headersSent(res: ServerResponse): boolean {
  return !!(res as unknown as { _header?: string | null })._header;
}

/** On a socket: how many attempts are open on its responses (see `Attempt.openOn`). */
const kOpenAttempts = Symbol('jailkeeper.openAttempts');

/** Admitted, its answer not decided yet. */
const OPEN = 0;
/** Its answer was decided (status and headers written) and counted: its slots are settled. */
const DECIDED = 1;
/** Its response closed (answered, or its client left) and was counted. */
const CLOSED = 2;

/**
 * One request's attempt, from the moment it arrives to its settlement: its client, where the
 * router is (the request as `keeper.check()` reads it), the slots it holds (address and account),
 * the failures the app marked, the account it named, and when it settles.
 *
 * An attempt that holds slots settles when its answer is **decided**: when its status and
 * headers are written (or the handler ended the response), whether or not the answer has reached
 * the client. A 401 queued behind a pipelined event stream, an event stream itself, a long poll:
 * each frees its slots at its status, so a slot never outlives its handler and a client's
 * long-lived requests never hold its others. An attempt whose client leaves before its answer is
 * decided is counted as abandoned (a failure in the jails it holds slots in). An attempt without
 * slots is counted when its response closes.
 *
 * Adapters create one per request with `kit.begin()`, judge it (`refused()`), admit it
 * (`admit()`), then `open()` it before the app's handlers run.
 */
export class Attempt<T = unknown> implements RequestInfo {
  readonly kit: AdapterKit<T>;
  readonly identity: ClientIdentity;
  /** What the adapter's refusal writer writes to (Express's `res`, Fastify's `reply`, Hono's `c`). */
  readonly target: T;
  /** The method the router runs (after a method override). */
  method: string;
  /** The request target as received (the query is dropped where it matters). */
  readonly path: string;
  /** The route pattern the router chose; null: none (yet); undefined: no pattern text. */
  route: string | null | undefined = null;
  caseInsensitive: boolean;
  /** The route's config: NO_JAILS counts nothing, a set only in those jails. */
  jails: RouteJails = undefined;
  /** The slots the attempt holds, settled once when its answer is decided. */
  slots: Slots | null = null;
  /** Marked failed by the app (`fail()`): in every jail that applies, or in these. */
  failed: true | Set<string> | undefined = undefined;
  /** The account the app named (`account()`), as the keeper keys it. */
  account: string | undefined = undefined;
  /**
   * The keys the jails keyed by a function gave this request (jail → key); null for a jail whose
   * function gave none. Undefined until one was asked (only where such jails exist).
   */
  keys: Map<string, string | null> | undefined = undefined;
  readonly userAgent: string | undefined;
  /**
   * Set by an adapter whose framework writes the response after its middleware returns (Hono):
   * the handler's return decides the answer. `handled()` settles the attempt at the status the
   * handler returned, before the response is written (a streamed body holds no slot), so no hook
   * is put on the response's `writeHead`; a close before `handled()` waits for it.
   */
  countsAfterHandler = false;
  readonly #res: ServerResponse;
  /** The response's request, its socket and its headers, read once (see `bodyPending`). */
  readonly #req: IncomingMessage;
  readonly #socket: Duplex;
  readonly #headers: IncomingMessage['headers'];
  #state = OPEN;
  #opened = false;
  /** The close came while the handler ran (`countsAfterHandler`): counted by `handled()`. */
  #closedEarly = false;
  /** The response's `writeHead` before this attempt watched it (another module may wrap it too). */
  #writeHead: ServerResponse['writeHead'] | undefined;
  /** The status `handled()` decided at (countsAfterHandler), before the response has it; else 0. */
  #handledStatus = 0;

  constructor(
    kit: AdapterKit<T>,
    identity: ClientIdentity,
    target: T,
    res: ServerResponse,
    method: string,
    url: string,
    userAgent: string | undefined,
    caseInsensitive: boolean,
    req: IncomingMessage = res.req,
    socket: Duplex = req.socket,
    headers: IncomingMessage['headers'] = req.headers,
  ) {
    this.kit = kit;
    this.identity = identity;
    this.target = target;
    this.#res = res;
    this.#req = req;
    this.#socket = socket;
    this.#headers = headers;
    this.method = method;
    this.path = url;
    this.userAgent = userAgent;
    this.caseInsensitive = caseInsensitive;
  }

  /**
   * The attempt opened on this response, found from the response alone (its close listener), or
   * undefined. For adapters whose own place for the request's state an app can replace (Express's
   * `res.locals`): slower than that place, so only where it lacks the state.
   */
  static of(res: ServerResponse): Attempt | undefined {
    const owner = closeOwner(res);
    return owner instanceof Attempt ? owner : undefined;
  }

  /**
   * False when no attempt is open on this socket's responses (none opened, or all closed): then
   * `Attempt.of()` would find none for a response on it, and need not look. Costs no read of a
   * response (see `bodyPending`).
   */
  static openOn(socket: Duplex): boolean {
    const open = (socket as Duplex & { [kOpenAttempts]?: number })[kOpenAttempts];
    return open !== undefined && open > 0;
  }

  /**
   * Judges the client's bans where the router is now (jail-scope bans need the route): true when
   * it is refused, and the refusal was written.
   */
  refused(): boolean {
    const kit = this.kit;
    const verdict = kit.keeper.check(this.identity, kit.jailScope ? this : undefined);
    if (!verdict.banned) return false;
    this.#refuse(verdict);
    return true;
  }

  /** Writes the refusal of a ban (`verdict`) or of a held budget (`null`, 429). */
  #refuse(verdict: Banned | null): void {
    const kit = this.kit;
    if (kit.headers && verdict !== null) {
      const jail = kit.keeper.options.jailsByName.get(verdict.jail);
      const res = this.#res;
      if (jail?.headers === true && !res.headersSent) {
        // The ban's remaining time, as Retry-After says it: nothing the refusal does not tell.
        appendField(res, 'ratelimit-policy', policyItem(jail));
        appendField(res, 'ratelimit', bannedItem(jail, verdict, kit.keeper.banClock.now()));
      }
    }
    kit.refuse(this.target, verdict, this.identity);
  }

  /** The request's headers, for a jail's key function. */
  get headers(): KeyFacts['headers'] {
    return this.#req.headers;
  }

  /**
   * Reserves the attempt's slots in `targets` (the jails that target the route), and with
   * `withSuspects` in the app-wide jails where its client has failures. `true` at once when
   * nothing needs reserving (every clean request); else a promise of `true` to run the handler,
   * or `false` when it must not run: refused (the refusal was written), or its client left while
   * it waited (then it counts as abandoned).
   */
  admit(targets: Targets, withSuspects = false): true | Promise<boolean> {
    if (this.kit.keyJails.length > 0) return this.#admitKeyed(targets, withSuspects);
    return this.#admitAddress(targets, withSuspects);
  }

  #admitAddress(targets: Targets, withSuspects: boolean): true | Promise<boolean> {
    const kit = this.kit;
    if (!kit.mustReserve(this.identity, targets, withSuspects)) return true;
    if (kit.keeper.isClosing) {
      // The keeper is shutting down: an attempt it could no longer record is not admitted.
      kit.unavailable(this.target);
      return Promise.resolve(false);
    }
    // A request whose body is still arriving takes no slot until it has arrived: slow bodies
    // from a shared address must not hold the budget of the address's other clients.
    if (bodyPending(this.#req, this.#socket, this.#headers)) {
      return this.#bodyArrived().then((arrived) => arrived && this.#reserve(targets, withSuspects));
    }
    return this.#reserve(targets, withSuspects);
  }

  /** One then() on the admission, not an async layer (a promise, a generator, an await's closures). */
  #reserve(targets: Targets, withSuspects: boolean): Promise<boolean> {
    return this.kit.reserve(this.identity, targets, withSuspects).then((answer) => {
      if (!answer.admitted) {
        this.#refuse(answer.verdict);
        return false;
      }
      return this.#take(answer.slots);
    });
  }

  /**
   * Admission where jails are keyed by a function: their keys are asked for (once per jail), a
   * banned key is refused at once, then the address's slots and the keys' slots are reserved.
   */
  #admitKeyed(targets: Targets, withSuspects: boolean): true | Promise<boolean> {
    const keyed = this.#judgeKeys();
    if (keyed === null) return Promise.resolve(false);
    const first = this.#admitAddress(targets, withSuspects);
    if (keyed.jails.length === 0) return first;
    const next = (go: boolean): Promise<boolean> | false => go && this.#reserveKeys(keyed.jails, keyed.keys);
    return first === true ? Promise.resolve(next(true)) : first.then(next);
  }

  /**
   * Asks each jail keyed by a function that counts this request here (or bans app-wide) for its
   * key, once, and judges the key's bans: null when one refuses (the refusal was written); else
   * the jails whose slots the keys take (those that target routes, not held yet).
   */
  #judgeKeys(): { jails: ResolvedJail[]; keys: string[] } | null {
    const kit = this.kit;
    const where: Where = {
      route: this.route,
      path: pathOf(this.path),
      caseInsensitive: this.caseInsensitive,
    };
    const only = this.jails;
    let facts: KeyFacts | undefined;
    const jails: ResolvedJail[] = [];
    const keys: string[] = [];
    for (const jail of kit.keyJails) {
      const counts =
        only !== NO_JAILS &&
        (only === undefined || only.has(jail.name)) &&
        jailWatches(jail, this.method, where) &&
        !isExempt(jail, where);
      // A jail-scope jail's key matters only where it counts; an app-scope ban refuses everywhere.
      if (!counts && jail.scope !== 'app') continue;
      this.keys ??= new Map();
      let key = this.keys.get(jail.name);
      if (key === undefined) {
        facts ??= keyFacts(this);
        key = keyOf(kit.keeper, jail, facts) ?? null;
        this.keys.set(jail.name, key);
      }
      if (key === null) continue;
      if (!jail.dryRun) {
        const verdict = kit.keeper.check({ ip: this.identity.ip, key }, this);
        if (verdict.banned) {
          this.#refuse(verdict);
          return null;
        }
      }
      // Slots are taken at a route, as for addresses: never before routing, nor without a route.
      if (
        counts &&
        this.route !== null &&
        kit.reserves &&
        targetsRoutes(jail) &&
        this.slots?.jails.includes(jail) !== true
      ) {
        jails.push(jail);
        keys.push(key);
      }
    }
    return { jails, keys };
  }

  async #reserveKeys(jails: ResolvedJail[], keys: string[]): Promise<boolean> {
    const kit = this.kit;
    if (kit.keeper.isClosing) {
      kit.unavailable(this.target);
      return false;
    }
    if (bodyPending(this.#req, this.#socket, this.#headers) && !(await this.#bodyArrived())) return false;
    const answer = await kit.admitKeys(this.identity, jails, keys);
    if (!answer.admitted) {
      this.#refuse(answer.verdict);
      return false;
    }
    return this.#take(answer.slots);
  }

  /**
   * Resolves true once the request's body has arrived (all of it, or as much as the request
   * buffers unread); false when its client left, or when it has not arrived within
   * `attempts.wait` (then it is answered 408 and its connection closed).
   */
  #bodyArrived(): Promise<boolean> {
    const req = this.#req;
    const deadline = performance.now() + this.kit.keeper.options.attempts.waitMs;
    return new Promise((resolve) => {
      let delayMs = 0;
      const look = (): void => {
        if (!bodyPending(req, this.#socket, this.#headers)) resolve(true);
        else if (req.socket.destroyed) resolve(false);
        else if (performance.now() >= deadline) {
          this.kit.timedOut(this.target);
          // The unread body is abandoned with its connection, once the answer is out.
          const res = this.#res;
          if (res.writableFinished) req.socket.destroy();
          else res.once('finish', () => req.socket.destroy());
          resolve(false);
        } else {
          delayMs = Math.min(64, delayMs * 2 || 1);
          setTimeout(look, delayMs);
        }
      };
      // A body sent with its headers is parsed right after the request is dispatched.
      setImmediate(look);
    });
  }

  /**
   * Names the account this attempt tries, once the app knows it: the jails keyed by account judge
   * it now, and it takes their slots. Resolves true to go on; false when it must not (refused,
   * with the refusal written; or its client left).
   */
  async nameAccount(name: unknown): Promise<boolean> {
    const kit = this.kit;
    const account = kit.accountKey(name);
    if (account === undefined) return true;
    this.account = account;
    if (bodyPending(this.#req, this.#socket, this.#headers) && !(await this.#bodyArrived())) return false;
    const answer = await kit.admitAccount(this, account, pathOf(this.path));
    if (!answer.admitted) {
      this.#refuse(answer.verdict);
      return false;
    }
    return this.#take(answer.slots);
  }

  /**
   * Marks the attempt failed (`fail()`), in every jail that applies or in `jails`. False when its
   * slots settled already (its answer was written before): call `fail()` before answering.
   */
  fail(jails: ReadonlySet<string> | undefined): boolean {
    if (this.#state === CLOSED) return false;
    if (jails === undefined || this.failed === true) this.failed = true;
    else {
      this.failed ??= new Set<string>();
      for (const jail of jails) this.failed.add(jail);
    }
    if (this.#state === DECIDED && this.slots !== null) {
      // Its slots settled at the status it wrote (a streamed answer that decides later): the
      // mark is counted now, on its own, so the guess still counts; but another attempt may
      // have taken the freed slot meanwhile, so the exact bound needs fail() before answering.
      this.kit.keeper.warn(
        'JK_WRN_LATE_FAIL',
        "fail() was called after the response's status was written: the failure was counted, but its slot had been freed at the status, so parallel attempts can pass maxRetry. Call fail() before writing the response.",
      );
      this.kit.count(this, this.#res.statusCode, null, false);
    }
    return true;
  }

  /**
   * The attempt was admitted and its handlers run now: its response is watched from here on
   * (`keeper.idle()` waits for it). Call once, before the app's first handler.
   */
  open(): void {
    const res = this.#res;
    const kit = this.kit;
    this.#opened = true;
    kit.opened();
    kit.keeper.trackConnection(this.#socket, this.identity);
    const socket = this.#socket as Duplex & { [kOpenAttempts]?: number };
    socket[kOpenAttempts] = (socket[kOpenAttempts] ?? 0) + 1;
    // A closure per admitted request: neither a property on the response (it would reshape Node's
    // and Express's response objects, slowing every access after) nor a WeakMap (its entries cost
    // the collector more than the closure does), measured with bench/http/process-cpu.bench.js.
    // Tagged with the attempt: `Attempt.of(res)` finds it from the response alone.
    onResponseClose(res, () => this.#close(), this, this.#socket);
    // Where the handler's return decides (countsAfterHandler), the response is not hooked: a
    // property set on every admitted response made Hono's survive the young generation (a fifth
    // of what a failure-heavy load allocated, ten times the scavenges' time), measured with
    // --trace-gc-nvp on bench/http/server.js.
    if (this.slots !== null && !this.countsAfterHandler) this.#watchDecision();
  }

  /**
   * For `countsAfterHandler` adapters: the handler returned with this status, which the response
   * will be written with; the attempt settles at it now. A response whose client left while the
   * handler ran is counted now, as abandoned. `raw`: the handler answered through Node's response
   * itself (Hono's RESPONSE_ALREADY_SENT): its status is the one written there, watched if not yet.
   */
  handled(status: number, raw = false): void {
    if (this.#closedEarly) {
      this.#closedEarly = false;
      this.#count(status, true);
      this.kit.closed();
      return;
    }
    if (this.#state !== OPEN) return;
    if (raw) {
      if (this.slots !== null) this.#watchDecision();
      return;
    }
    // On the next tick: after the framework's continuations in this turn of microtasks, which
    // write the answer, so that a ban it makes (closing the client's connections) cannot cut it.
    this.#handledStatus = status;
    process.nextTick(() => {
      if (this.#state !== OPEN) return;
      this.#state = DECIDED;
      const res = this.#res;
      this.#count(res.headersSent ? res.statusCode : status, false);
    });
  }

  /** Slots just reserved: held until the answer is decided, or settled at once if it was. */
  #take(slots: Slots | null): boolean {
    if (slots === null) return this.#state !== CLOSED;
    const res = this.#res;
    if (this.kit.headers && !res.headersSent) showRemaining(res, slots);
    if (this.#state === CLOSED || (!this.#opened && (res.destroyed || this.#socket.destroyed))) {
      // The client left while the attempt waited for its slot: abandoned, counted now.
      this.#settleNow(slots, res.statusCode, true);
      return false;
    }
    if (this.#state === DECIDED) {
      // Its answer was written (or returned) while the slot was reserved: settled at its status.
      this.#settleNow(slots, this.#handledStatus || res.statusCode, false);
      return true;
    }
    this.slots = this.kit.mergeSlots(this.slots, slots);
    if (this.#opened && !this.countsAfterHandler) this.#watchDecision();
    return true;
  }

  /** Settles slots reserved after the attempt was counted, with how it ended. */
  #settleNow(slots: Slots, status: number, abandoned: boolean): void {
    this.kit.count(this, status, slots, abandoned);
  }

  /** From now, the answer's `writeHead` (which every way of answering goes through) settles it. */
  #watchDecision(): void {
    const res = this.#res;
    if (headersSent(res)) {
      this.#decide();
      return;
    }
    if (this.#writeHead !== undefined) return;
    const original = res.writeHead as (...args: unknown[]) => ServerResponse;
    this.#writeHead = res.writeHead;
    // The original first: the status it writes is the answer's. Only attempts that hold slots.
    res.writeHead = ((...args: unknown[]) => {
      const out = original.apply(res, args);
      this.#decide();
      return out;
    }) as ServerResponse['writeHead'];
  }

  /** The answer's status and headers were written: the attempt settles at that status. */
  #decide(): void {
    if (this.#state !== OPEN) return;
    this.#state = DECIDED;
    this.#count(this.#res.statusCode, false);
  }

  /** The response closed: counted now, unless its answer was decided (and counted) before. */
  #close(): void {
    if (this.#state === CLOSED) return;
    const was = this.#state;
    this.#state = CLOSED;
    (this.#socket as Duplex & { [kOpenAttempts]: number })[kOpenAttempts]--;
    const res = this.#res;
    if (was === DECIDED) {
      this.kit.closed();
      return;
    }
    if (this.countsAfterHandler && !res.headersSent && this.#handledStatus === 0) {
      this.#closedEarly = true;
      return;
    }
    // Closed before its decision (handled()'s next tick): counted at the status the handler gave.
    this.#count(res.headersSent ? res.statusCode : this.#handledStatus || res.statusCode, !res.writableEnded);
    this.kit.closed();
  }

  #count(status: number, abandoned: boolean): void {
    const kit = this.kit;
    if (kit.watches(status, this.slots, this.failed)) kit.count(this, status, this.slots, abandoned);
  }
}
