import { Readable } from 'node:stream';

/** One line of the console's live feed. */
export interface FeedEvent {
  readonly id: number;
  readonly atMs: number;
  /** `restored`: the bans a store handed back at startup, one line per restore (they are not new bans). */
  readonly type: 'ban' | 'unban' | 'refusal' | 'wouldBan' | 'audit' | 'store' | 'restored';
  readonly jail?: string;
  readonly client?: string;
  /** Anything else the line shows (reason, origin, cause, counts, who). */
  readonly [field: string]: unknown;
}

type FeedInput = Omit<FeedEvent, 'id' | 'atMs'>;

const RECENT = 300;
const MAX_BUFFERED = 1 << 20;
const PING_MS = 15_000;
const REFUSAL_WINDOW_MS = 1000;
const MAX_REFUSAL_LINES = 20;
const MAX_REFUSAL_KEYS = 1000;

/**
 * The live feed: the recent events (a ring the page reads first, and replays after a reconnect
 * with Last-Event-ID) and the open server-sent-event streams. Refusals are summed per jail and
 * client over one second, so a flood of refused requests is a few lines a second, not thousands.
 * A stream that does not keep up (over 1 MB buffered) is closed; the browser reconnects.
 */
export class Feed {
  readonly #now: () => number;
  readonly #recent: FeedEvent[] = [];
  readonly #streams = new Set<Readable>();
  readonly #onActive: (active: boolean) => void;
  #nextId = 1;
  #refusals = new Map<string, { jail: string; client: string; count: number }>();
  #refusalOverflow = 0;
  #refusalTimer: NodeJS.Timeout | undefined;

  constructor(now: () => number, onActive: (active: boolean) => void = () => {}) {
    this.#now = now;
    this.#onActive = onActive;
  }

  get watchers(): number {
    return this.#streams.size;
  }

  publish(input: FeedInput): FeedEvent {
    const event = { ...input, id: this.#nextId++, atMs: this.#now() } as FeedEvent;
    this.#recent.push(event);
    if (this.#recent.length > RECENT) this.#recent.shift();
    if (this.#streams.size > 0) {
      const frame = `id: ${event.id}\nevent: feed\ndata: ${JSON.stringify(event)}\n\n`;
      for (const stream of this.#streams) this.#push(stream, frame);
    }
    return event;
  }

  /** One refused request: summed into the next refusal lines. */
  refusal(jail: string, client: string): void {
    const key = `${jail}\u0000${client}`;
    const held = this.#refusals.get(key);
    if (held !== undefined) held.count++;
    else if (this.#refusals.size < MAX_REFUSAL_KEYS) this.#refusals.set(key, { jail, client, count: 1 });
    else this.#refusalOverflow++;
    this.#refusalTimer ??= setTimeout(() => this.#flushRefusals(), REFUSAL_WINDOW_MS).unref();
  }

  #flushRefusals(): void {
    this.#refusalTimer = undefined;
    const entries = [...this.#refusals.values()].sort((a, b) => b.count - a.count);
    this.#refusals = new Map();
    let others = this.#refusalOverflow;
    let otherClients = this.#refusalOverflow > 0 ? 1 : 0;
    this.#refusalOverflow = 0;
    for (const [i, entry] of entries.entries()) {
      if (i < MAX_REFUSAL_LINES) this.publish({ type: 'refusal', ...entry });
      else {
        others += entry.count;
        otherClients++;
      }
    }
    if (others > 0) this.publish({ type: 'refusal', count: others, clients: otherClients });
  }

  /** The recent events, oldest first (after `afterId` when given). */
  recent(afterId = 0): FeedEvent[] {
    return this.#recent.filter((e) => e.id > afterId);
  }

  /**
   * A server-sent-event stream: the events after `lastEventId` first, then each new one; a ping
   * comment every 15 s, and the end when `isLive()` turns false (the session ended).
   */
  open(lastEventId: number | undefined, isLive: () => boolean): Readable {
    const stream = new Readable({ read() {} });
    const ping = setInterval(() => {
      if (!isLive()) stream.push(null);
      else this.#push(stream, ': ping\n\n');
    }, PING_MS).unref();
    stream.once('close', () => {
      clearInterval(ping);
      this.#streams.delete(stream);
      if (this.#streams.size === 0) this.#onActive(false);
    });
    stream.push('retry: 2000\n\n');
    for (const event of lastEventId === undefined ? [] : this.recent(lastEventId)) {
      stream.push(`id: ${event.id}\nevent: feed\ndata: ${JSON.stringify(event)}\n\n`);
    }
    this.#streams.add(stream);
    if (this.#streams.size === 1) this.#onActive(true);
    return stream;
  }

  #push(stream: Readable, frame: string): void {
    if (stream.destroyed) return;
    if (stream.readableLength > MAX_BUFFERED) {
      stream.destroy();
      return;
    }
    stream.push(frame);
  }

  /** Ends every stream (the console is closing). */
  close(): void {
    for (const stream of this.#streams) stream.push(null);
    clearTimeout(this.#refusalTimer);
  }
}
