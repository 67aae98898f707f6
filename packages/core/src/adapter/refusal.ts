import type { Duration } from '../config/duration.js';
import { checkKeys } from '../config/validate.js';
import type { Banned } from '../engine/ban-index.js';
import { invalid } from '../errors.js';
import type { ClientIdentity } from '../identity/identity.js';

/** How a framework adapter refuses a banned client. */
export interface RefusalOptions {
  /**
   * `'forbid'`: answer 403 (or `response.status`). `'drop'`: destroy the socket with no answer,
   * like nginx's 444; when the peer is a trusted proxy it falls back to 403, because destroying the
   * proxy's pooled connection would cut other clients and provoke retries.
   * @default 'forbid'
   */
  block?: 'forbid' | 'drop';
  /** The refusal's status, body and headers. @default 403, `{ "error": "Forbidden" }` */
  response?: { status?: number; body?: string | object; headers?: Record<string, string> };
  /** Send `Retry-After` with the seconds left (never for a permanent ban). @default true */
  retryAfter?: boolean;
  /**
   * (Every adapter's, beside the refusal options.) Requests that arrive before the keeper's store
   * has loaded its bans (`keeper.ready`) are held at most this long, then go on with a warning
   * (JK_WRN_NOT_READY), so forgetting `await keeper.ready` cannot let a banned client in.
   * @default '10s'
   */
  readyTimeout?: Duration;
}

/** Refusal options after validation: the body serialised and the headers listed once. */
export interface ResolvedRefusal {
  readonly drop: boolean;
  readonly status: number;
  readonly body: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly retryAfter: boolean;
}

const RESPONSE_KEYS = { status: true, body: true, headers: true } as const;

/** Validates refusal options once and serialises the body, so a refusal only writes bytes. */
export function resolveRefusal(prefix: string, input: Record<string, unknown>): ResolvedRefusal {
  const at = (key: string) => (prefix === '' ? key : `${prefix}.${key}`);
  const block = input.block ?? 'forbid';
  if (block !== 'forbid' && block !== 'drop') invalid(at('block'), '"forbid" or "drop"', block);
  const response =
    input.response === undefined ? {} : checkKeys(at('response'), input.response, RESPONSE_KEYS);
  const status = response.status ?? 403;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    invalid(at('response.status'), 'an integer from 400 to 599', status);
  }
  const raw = response.body ?? { error: 'Forbidden' };
  const isText = typeof raw === 'string';
  if (!isText && (typeof raw !== 'object' || raw === null))
    invalid(at('response.body'), 'a string or an object', raw);
  const headers = new Map<string, string>([
    ['content-type', isText ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8'],
  ]);
  if (response.headers !== undefined) {
    if (typeof response.headers !== 'object' || response.headers === null)
      invalid(at('response.headers'), 'an object', response.headers);
    for (const [name, value] of Object.entries(response.headers as object)) {
      if (typeof value !== 'string') invalid(at(`response.headers.${name}`), 'a string', value);
      headers.set(name.toLowerCase(), value);
    }
  }
  const retryAfter = input.retryAfter ?? true;
  if (typeof retryAfter !== 'boolean') invalid(at('retryAfter'), 'true or false', retryAfter);
  return Object.freeze({
    drop: block === 'drop',
    status,
    body: isText ? raw : JSON.stringify(raw),
    headers: Object.freeze([...headers]),
    retryAfter,
  });
}

/** `Retry-After` in whole seconds, rounded up; undefined for a permanent ban. */
export function retryAfterSeconds(untilMs: number, nowMs: number): string | undefined {
  if (untilMs === Number.POSITIVE_INFINITY) return undefined;
  return String(Math.max(1, Math.ceil((untilMs - nowMs) / 1000)));
}

/**
 * How an adapter writes to its framework's response: static functions, built once per adapter, so
 * that a refusal allocates nothing. `T` is the framework's response (Node's, Fastify's reply...).
 */
export interface RefusalWriter<T> {
  /** Destroys the connection without an answer. */
  drop(target: T): void;
  status(target: T, status: number): void;
  header(target: T, name: string, value: string): void;
  /** Sends the body and ends the response. */
  send(target: T, body: string): void;
}

/**
 * Refuses a banned client, the same way on every adapter: `drop` destroys the connection (a
 * client behind a trusted proxy gets the status instead, since destroying the proxy's pooled
 * connection would cut other clients); otherwise the status, the headers, `Retry-After` with the
 * seconds left (never for a permanent ban), and the body.
 */
export function writeRefusal<T>(
  writer: RefusalWriter<T>,
  target: T,
  refusal: ResolvedRefusal,
  verdict: Banned,
  identity: ClientIdentity,
  nowMs: number,
): void {
  if (refusal.drop && identity.viaProxy !== true) {
    writer.drop(target);
    return;
  }
  writer.status(target, refusal.status);
  for (const [name, value] of refusal.headers) writer.header(target, name, value);
  if (refusal.retryAfter) {
    const seconds = retryAfterSeconds(verdict.untilMs, nowMs);
    if (seconds !== undefined) writer.header(target, 'retry-after', seconds);
  }
  writer.send(target, refusal.body);
}
