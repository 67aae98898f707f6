import { performance } from 'node:perf_hooks';
import type { StoreContext } from '@jailkeeper/core/store';
import type { Cluster, Redis } from 'ioredis';

/** A deadline's timer this much late (ms) is taken for time this process did not run. */
const LATE_MS = 20;

/** A call that took longer than its deadline. */
class TimeoutError extends Error {
  readonly code = 'JK_REDIS_TIMEOUT';
}

const MEANWHILE = {
  local: ' and counts new failures in this process',
  allow: ' and counts nothing',
  deny: ', counts new failures in this process, and refuses every client not in ignoreIp',
} as const;

/** What happened, in an operator's words, from an error of ioredis or the network. */
function what(error: unknown): string | undefined {
  const e = error as { code?: string; message?: string; name?: string } | undefined;
  switch (e?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
  }
  const message = e?.message ?? '';
  if (/NOAUTH|WRONGPASS|invalid password/i.test(message)) return 'authentication refused';
  if (/^LOADING/.test(message)) return 'Redis is loading its data';
  if (/Connection is closed/i.test(message)) return 'connection closed';
  if (/CLUSTERDOWN/.test(message)) return 'the cluster is down';
  return undefined;
}

/**
 * The store's view of its connection: calls with a deadline, the degraded state, outages
 * reported once each (a warning when one starts, an info line with its length when it ends, both
 * through the keeper), probes while down, and errors counted.
 */
export class Link {
  readonly #client: Redis | Cluster;
  readonly #timeoutMs: number;
  readonly #probeMs: number;
  readonly #meanwhile: string;
  readonly #recover: () => Promise<void>;
  readonly #recovered: () => void;
  #ctx: StoreContext | undefined;
  #degraded = false;
  #since = 0;
  #probeTimer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | undefined;
  /**
   * The probe's PING while it has not been answered. A PING that misses the deadline is kept:
   * its answer, however late, is the first sign that Redis answers again (a SIGSTOP ended, a
   * partition healed, the latency fell), and probes again at once rather than at the next
   * `probeInterval`. One at a time: a stalled connection never piles them up.
   */
  #ping: Promise<unknown> | undefined;
  /** True while a PING confirms a missed deadline (see fail()): answered locally, not reported. */
  #suspect = false;
  #closed = false;
  /** The client's last connection error: why a call that timed out did not get through. */
  #lastError: unknown;
  #onReady: (() => void) | undefined;

  constructor(
    client: Redis | Cluster,
    options: { timeoutMs: number; probeMs: number; policy: keyof typeof MEANWHILE },
    recover: () => Promise<void>,
    recovered: () => void,
  ) {
    this.#client = client;
    this.#timeoutMs = options.timeoutMs;
    this.#probeMs = options.probeMs;
    this.#meanwhile = MEANWHILE[options.policy];
    this.#recover = recover;
    this.#recovered = recovered;
    // Listening is what keeps ioredis from printing "Unhandled error event" on every retry: the
    // outage is reported once, through the keeper's logger. The listener stays after close().
    client.on('error', (error: unknown) => {
      this.#lastError = error;
    });
  }

  /** Starts following the client: a reconnection while degraded is probed at once. */
  attach(ctx: StoreContext, onReady: () => void): void {
    this.#ctx = ctx;
    this.#onReady = () => {
      this.#lastError = undefined;
      if (this.#degraded) void this.probe();
      else onReady();
    };
    this.#client.on('ready', this.#onReady);
  }

  /** True while calls are answered locally: an outage, or a missed deadline being confirmed. */
  get degraded(): boolean {
    return this.#degraded || this.#suspect;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /**
   * Runs a call with a deadline (the store's `timeout`, or `timeoutMs`). Side-effect free.
   * The deadline is judged after the event loop has read the sockets once more: timers run before
   * I/O in a turn of the loop, so a loop kept busy by the app's own traffic (an attacker's burst)
   * would otherwise fire the timer before reading a reply that had arrived in time. A timer that
   * fires more than LATE_MS late gives that lateness back once (the process was not running, so
   * Redis was not being timed). Only a Redis that has not answered by then misses it.
   */
  call<T>(run: () => Promise<T>, timeoutMs = this.#timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let immediate: NodeJS.Immediate | undefined;
    const started = performance.now();
    let granted = timeoutMs;
    const deadline = new Promise<never>((_, reject) => {
      const due = () => {
        // A timer that fires late says this process did not run meanwhile (its loop blocked, or
        // the machine busy): that time is given back once, so that it is Redis that is timed.
        const late = performance.now() - started - granted;
        if (granted === timeoutMs && late > LATE_MS) {
          granted += late;
          timer = setTimeout(due, late);
          return;
        }
        immediate = setImmediate(() =>
          reject(new TimeoutError(`Redis did not answer within ${timeoutMs} ms`)),
        );
      };
      timer = setTimeout(due, timeoutMs);
    });
    return Promise.race([run(), deadline]).finally(() => {
      clearTimeout(timer);
      if (immediate !== undefined) clearImmediate(immediate);
    });
  }

  /**
   * A call failed: counted, and the store goes degraded (reported once per outage). A call that
   * only missed its deadline on a connected client is confirmed first: while a PING with the same
   * deadline is out, the store answers locally (`degraded` is true) but reports nothing; the PING
   * missing it too is the outage (reported as before, one deadline later); the PING answered in
   * time was a hiccup (Redis or this process held up once): the local answers of that moment are
   * written back, and nothing is reported. A healthy Redis on a busy machine is then not
   * reported "did not answer" for one late reply, after a recovery or ever.
   */
  fail(operation: string, error: unknown): void {
    if (this.#closed) return;
    this.#ctx?.storeError?.(operation, error);
    const connected = (this.#client as Redis).status === 'ready';
    if (error instanceof TimeoutError && connected && !this.#degraded) this.#confirm(error);
    else this.down(error);
  }

  #confirm(error: unknown): void {
    if (this.#suspect) return;
    this.#suspect = true;
    void (async () => {
      try {
        await this.call(() => this.#client.ping());
      } catch {
        this.#suspect = false;
        this.down(error);
        return;
      }
      this.#suspect = false;
      if (!this.#degraded && !this.#closed) this.#recovered();
    })();
  }

  /** Waits until the client (or `other`) is connected, up to `ms`; false when it did not in time. */
  async connected(ms: number, other?: Redis | Cluster): Promise<boolean> {
    const client = (other ?? this.#client) as Redis;
    if (client.status === 'ready') return true;
    if (client.status === 'wait') client.connect().catch(() => {}); // lazyConnect: start now
    let timer: NodeJS.Timeout | undefined;
    let onReady: (() => void) | undefined;
    const ok = await new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      client.once('ready', onReady);
      timer = setTimeout(() => resolve(false), ms);
    });
    clearTimeout(timer);
    if (onReady) client.off('ready', onReady);
    return ok;
  }

  /** Why Redis cannot be used, in words: "connection refused (127.0.0.1:6390)", "did not answer within 100 ms". */
  describe(error: unknown): string {
    const status = (this.#client as Redis).status;
    const own = what(error);
    if (own !== undefined) return this.#where(own, error);
    const cause = status === 'ready' ? undefined : what(this.#lastError);
    if (cause !== undefined) return this.#where(cause, this.#lastError);
    if (error instanceof TimeoutError) return (error as Error).message.replace(/^Redis /, '');
    return (error as Error)?.message ?? String(error);
  }

  #where(text: string, error: unknown): string {
    const e = error as { address?: string; port?: number } | undefined;
    return e?.address ? `${text}, ${e.address}${e.port ? `:${e.port}` : ''}` : text;
  }

  /** Redis is unreachable: degraded until a probe gets an answer. Reported once per outage. */
  down(error: unknown): void {
    if (this.#degraded || this.#closed) return;
    this.#degraded = true;
    this.#since = Date.now();
    this.#ctx?.storeDown?.({ reason: this.describe(error), meanwhile: this.#meanwhile, error });
    this.#probeTimer = setInterval(() => void this.probe(), this.#probeMs);
    this.#probeTimer.unref();
  }

  /**
   * Asks Redis whether it answers; on an answer, the store catches up (writes its bans back, reads
   * what it missed) before it leaves the degraded state and reports the outage's end.
   */
  probe(): Promise<void> {
    if (this.#probing !== undefined) return this.#probing;
    // Judged before the probe starts: an async function that returns before its first await
    // would run its `finally` before `#probing` is even set, and leave it set for ever. A PING
    // still out (stalled, or slow) probes again when it is answered: never a second one meanwhile,
    // and never that old one timed as if just sent.
    if (!this.#degraded || this.#closed || this.#ping !== undefined) return Promise.resolve();
    this.#probing = (async () => {
      try {
        try {
          await this.call(() => this.#pingOnce());
          await this.#recover();
        } catch (error) {
          this.#ctx?.storeError?.('probe', error);
          return;
        }
        if (this.#closed) return;
        clearInterval(this.#probeTimer);
        this.#probeTimer = undefined;
        this.#degraded = false;
        this.#ctx?.storeUp?.({ durationMs: Date.now() - this.#since });
        this.#recovered();
      } finally {
        this.#probing = undefined;
      }
    })();
    return this.#probing;
  }

  /** A probe's PING, kept until it is answered (see #ping). */
  #pingOnce(): Promise<unknown> {
    const ping = this.#client.ping();
    this.#ping = ping;
    ping.then(
      () => {
        this.#ping = undefined;
        // Answered after its probe gave up on it: Redis is back (or answers slowly), probe now.
        if (this.#degraded && !this.#closed && this.#probing === undefined) void this.probe();
      },
      () => {
        this.#ping = undefined;
      },
    );
    return ping;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#probeTimer);
    if (this.#onReady) this.#client.off('ready', this.#onReady);
  }
}
