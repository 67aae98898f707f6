import type { BanEvent, Duration, FailureEvent, Jailkeeper, UnbanEvent } from '@jailkeeper/core';
import { checkKeys, invalid, positiveInteger, toDurationMs } from '@jailkeeper/core/adapter';
import { formatDuration } from '@jailkeeper/core/operator';

/** Options of {@link createWebhookNotifier}. */
export interface WebhookNotifierOptions {
  /** Where the JSON is POSTed (a Slack or Mattermost incoming webhook, or your own endpoint). */
  url: string;
  /** Which events are sent. @default ['ban', 'unban'] */
  events?: Array<'ban' | 'unban' | 'wouldBan'>;
  /** Events are gathered this long before a message goes out. @default '2s' */
  batchWindow?: Duration;
  /** A batch with more events than this goes out as one digest (counts per jail, first addresses). @default 5 */
  digestThreshold?: number;
  /** Attempts per message on a network error, a 429 or a 5xx, with doubling delays. @default 5 */
  maxAttempts?: number;
  /** The first retry's delay. @default '1s' */
  retryDelay?: Duration;
  /** One attempt's deadline. @default '5s' */
  timeout?: Duration;
  /** Extra request headers (an Authorization header for your own endpoint). */
  headers?: Record<string, string>;
  /** Only bans made by this process (not those learned from other instances), so a fleet notifies each ban once. @default true */
  localOnly?: boolean;
  /** The most events waiting; beyond it they are counted, not kept. @default 10000 */
  maxQueue?: number;
  /** For tests: the fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** One event as the webhook's `events` array carries it. */
export interface NotifiedEvent {
  readonly type: 'ban' | 'unban' | 'wouldBan';
  readonly jail: string;
  readonly client: string;
  readonly ip?: string;
  readonly startMs: number;
  /** null for a permanent ban. */
  readonly endMs: number | null;
  readonly banCount: number;
  readonly reason: string;
  readonly manual: boolean;
  readonly cause?: string;
  /** The request that made the last failure (attacker-chosen text: data, never markup). */
  readonly lastRequest?: string;
}

/** The notifier {@link createWebhookNotifier} returns. */
export interface WebhookNotifier {
  /** Sends what is waiting now; resolves when delivered or given up. */
  flush(): Promise<void>;
  /** Stops listening, sends what is waiting, and resolves when done. */
  close(): Promise<void>;
  /** Messages delivered, given up, and events that did not fit the queue. */
  readonly stats: { delivered: number; failed: number; overflow: number };
}

const KEYS = {
  url: true,
  events: true,
  batchWindow: true,
  digestThreshold: true,
  maxAttempts: true,
  retryDelay: true,
  timeout: true,
  headers: true,
  localOnly: true,
  maxQueue: true,
  fetch: true,
} as const;
/** The most recent failing requests remembered, for the ban message. */
const LAST_REQUESTS = 1000;
const MAX_LISTED = 20;

/**
 * Renders attacker-chosen text (a path) for a Slack or Mattermost `text`: control characters and
 * backticks replaced, `& < >` escaped (Slack's rule, so `<!channel>` cannot ping anyone), cut to
 * 120 characters, and set in a code span so that Markdown is not interpreted.
 */
export function escapeForChat(text: string): string {
  const clean = Array.from(text.slice(0, 240), (ch) => {
    const code = ch.codePointAt(0) ?? 0;
    return code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0) || ch === '`' ? '?' : ch;
  })
    .join('')
    .slice(0, 120)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
  return `\`${clean}\``;
}

function describeEvent(e: NotifiedEvent): string {
  const who = escapeForChat(e.ip ?? e.client);
  const where = escapeForChat(e.jail);
  if (e.type === 'unban') return `unbanned ${who} in ${where} (${e.cause ?? 'manual'})`;
  const length = e.endMs === null ? 'permanently' : `for ${formatDuration(e.endMs - e.startMs)}`;
  const verb = e.type === 'wouldBan' ? 'would have banned' : 'banned';
  const nth = e.banCount > 1 ? `, ban #${e.banCount}` : '';
  const last = e.lastRequest === undefined ? '' : `; last request ${escapeForChat(e.lastRequest)}`;
  return `${verb} ${who} in ${where} ${length} (${escapeForChat(e.reason)}${nth}${last})`;
}

/** The JSON body of one message: `text` for chat webhooks, `events` for programs. */
function webhookPayload(
  events: readonly NotifiedEvent[],
  digestThreshold: number,
  overflow = 0,
): { text: string; events: NotifiedEvent[]; digest: boolean; notListed: number } {
  const listed = events.slice(0, 500);
  const notListed = events.length - listed.length + overflow;
  if (events.length <= digestThreshold && notListed === 0) {
    return {
      text: events.map((e) => `jailkeeper: ${describeEvent(e)}`).join('\n'),
      events: listed,
      digest: false,
      notListed: 0,
    };
  }
  const counts = new Map<string, number>();
  for (const e of events) {
    const key = `${e.type} ${e.jail}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const summary = [...counts]
    .map(([key, n]) => {
      const [type, jail = ''] = key.split(' ');
      return `${n} ${type === 'ban' ? 'bans' : type === 'unban' ? 'unbans' : 'would-be bans'} in ${escapeForChat(jail)}`;
    })
    .join(', ');
  const first = events
    .slice(0, MAX_LISTED)
    .map((e) => `• ${describeEvent(e)}`)
    .join('\n');
  const more = events.length + overflow - Math.min(events.length, MAX_LISTED);
  return {
    text: `jailkeeper digest: ${summary}${overflow > 0 ? ` (and ${overflow} events not kept)` : ''}\n${first}${more > 0 ? `\n…and ${more} more` : ''}`,
    events: listed,
    digest: true,
    notListed,
  };
}

/**
 * Sends bans and unbans to a webhook as JSON (`text` for Slack and Mattermost, `events` for
 * programs), like fail2ban's mail actions. Events are gathered for `batchWindow`; a ban storm
 * becomes one digest. Delivery is retried with doubling delays, and nothing runs on a request's
 * path: listeners only queue. Attacker-chosen text is escaped, never interpreted.
 * @example
 * const notifier = createWebhookNotifier(keeper, { url: process.env.SLACK_WEBHOOK_URL });
 */
export function createWebhookNotifier(keeper: Jailkeeper, options: WebhookNotifierOptions): WebhookNotifier {
  const input = checkKeys('createWebhookNotifier options', options, KEYS);
  let url: URL;
  try {
    url = new URL(String(input.url));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    invalid('url', 'an http(s) URL', input.url);
  }
  const types = new Set((input.events as string[] | undefined) ?? ['ban', 'unban']);
  for (const t of types) {
    if (t !== 'ban' && t !== 'unban' && t !== 'wouldBan')
      invalid('events', '"ban", "unban" or "wouldBan"', t);
  }
  const windowMs = toDurationMs('batchWindow', input.batchWindow ?? '2s', { allowZero: true });
  const digestThreshold = positiveInteger('digestThreshold', input.digestThreshold, 5);
  const maxAttempts = positiveInteger('maxAttempts', input.maxAttempts, 5, { max: 100 });
  const retryMs = toDurationMs('retryDelay', input.retryDelay ?? '1s');
  const timeoutMs = toDurationMs('timeout', input.timeout ?? '5s');
  const maxQueue = positiveInteger('maxQueue', input.maxQueue, 10_000);
  const localOnly = input.localOnly ?? true;
  if (typeof localOnly !== 'boolean') invalid('localOnly', 'true or false', localOnly);
  const headers = {
    'content-type': 'application/json',
    ...(input.headers as Record<string, string> | undefined),
  };
  const doFetch = (input.fetch as typeof fetch | undefined) ?? globalThis.fetch;

  const stats = { delivered: 0, failed: 0, overflow: 0 };
  let dropped = 0;
  let queue: NotifiedEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();
  const lastRequest = new Map<string, string>();

  const enqueue = (event: NotifiedEvent) => {
    if (queue.length >= maxQueue) {
      stats.overflow++;
      dropped++;
      return;
    }
    queue.push(event);
    if (timer === undefined) {
      timer = setTimeout(() => void flush(), windowMs);
      timer.unref();
    }
  };
  /** The fields every notified event has, from a ban or unban event. */
  const base = (type: NotifiedEvent['type'], e: BanEvent | UnbanEvent) => ({
    type,
    jail: e.jail,
    client: e.client,
    startMs: e.startMs,
    endMs: Number.isFinite(e.endMs) ? e.endMs : null,
    banCount: e.banCount,
    reason: e.reason,
    manual: e.manual,
  });
  const fromBan = (type: 'ban' | 'wouldBan') => (e: BanEvent) => {
    if (localOnly && e.origin !== 'local') return;
    const last = lastRequest.get(e.client);
    enqueue({
      ...base(type, e),
      ...(e.ip === undefined ? {} : { ip: e.ip }),
      ...(last === undefined ? {} : { lastRequest: last }),
    });
  };
  const onFailure = (e: FailureEvent) => {
    if (lastRequest.size >= LAST_REQUESTS) lastRequest.delete(lastRequest.keys().next().value as string);
    lastRequest.delete(e.client);
    lastRequest.set(e.client, `${e.method} ${e.path} → ${e.status}`);
  };
  const onBan = fromBan('ban');
  const onWouldBan = fromBan('wouldBan');
  const onUnban = (e: UnbanEvent) => {
    if (localOnly && e.origin !== 'local') return;
    enqueue({ ...base('unban', e), cause: e.cause });
  };
  if (types.has('ban') || types.has('wouldBan')) keeper.on('failure', onFailure);
  if (types.has('ban')) keeper.on('ban', onBan);
  if (types.has('wouldBan')) keeper.on('wouldBan', onWouldBan);
  if (types.has('unban')) keeper.on('unban', onUnban);

  const deliver = async (body: string): Promise<void> => {
    let delay = retryMs;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const response = await doFetch(url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) {
          stats.delivered++;
          return;
        }
        if (response.status !== 429 && response.status < 500) break; // the endpoint refuses this message
        const after = Number(response.headers.get('retry-after'));
        if (Number.isFinite(after) && after > 0) retryAfterMs = Math.min(after * 1000, 60_000);
      } catch {
        // network error or timeout: retried
      }
      if (attempt === maxAttempts) break;
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs ?? delay).unref());
      delay *= 2;
    }
    stats.failed++;
    keeper.warn(
      'JK_WRN_NOTIFY_FAILED',
      `The webhook at ${url.host} did not take a notification after ${maxAttempts} attempts; later ones are still sent.`,
    );
  };

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    const overflow = dropped;
    dropped = 0;
    queue = [];
    if (batch.length === 0 && overflow === 0) return sending;
    sending = sending.then(() => deliver(JSON.stringify(webhookPayload(batch, digestThreshold, overflow))));
    return sending;
  };

  return {
    stats,
    flush,
    async close() {
      keeper.off('failure', onFailure);
      keeper.off('ban', onBan);
      keeper.off('wouldBan', onWouldBan);
      keeper.off('unban', onUnban);
      await flush();
    },
  };
}
