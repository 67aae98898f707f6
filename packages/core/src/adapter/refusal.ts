import { STATUS_CODES } from 'node:http';
import { RESERVED_JAILS } from '../config/defaults.js';
import type { Duration } from '../config/duration.js';
import { checkKeys } from '../config/validate.js';
import type { Banned } from '../engine/ban-index.js';
import { invalid } from '../errors.js';
import type { ClientIdentity } from '../identity/identity.js';
import type { Ban } from '../store/store.js';

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

/** The options every adapter takes, typed with its request and response. */
export interface AdapterOptions<Req, Res> extends RefusalOptions {
  /**
   * Renders refusals yourself (an HTML page, an RFC 9457 problem document, i18n, a request id in
   * your log), instead of the configured response: called with why and what jailkeeper would
   * send. It must answer. Not called for `drop`, and not for upgrades (they get the response
   * options). If it throws, the default refusal is sent. @default the configured response
   */
  onRefused?: (req: Req, res: Res, info: RefusalInfo) => void;
  /**
   * Requests jailkeeper leaves alone: not judged, not counted (a function form of ignoreIp, for
   * example a load balancer's health check). A client that can make it return true is never
   * refused: base it on what a client cannot forge. Runs on every request: keep it cheap.
   */
  skip?: (req: Req) => boolean;
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

/**
 * `Retry-After` in whole seconds, rounded up; undefined for a permanent ban. With the ban's
 * `startMs`, never more than the ban's own length: a clock a few ms behind the one that stamped the
 * ban would otherwise say 3601 for a ban of an hour.
 */
export function retryAfterSeconds(untilMs: number, nowMs: number, startMs?: number): string | undefined {
  if (untilMs === Number.POSITIVE_INFINITY) return undefined;
  const from = startMs !== undefined && startMs > nowMs ? startMs : nowMs;
  return String(Math.max(1, Math.ceil((untilMs - from) / 1000)));
}

/** Why a request was refused, as `onRefused` hooks receive it. */
export interface RefusalInfo {
  /**
   * `'banned'`: a ban refuses the client here; `'busy'`: its attempts in flight on a targeted route
   * held the whole budget for longer than `attempts.wait`; `'unavailable'`: the store is down and
   * its policy is to fail closed (`onStoreError: 'deny'`).
   */
  readonly reason: 'banned' | 'busy' | 'unavailable';
  /** The status jailkeeper would send: `response.status` (403) for a ban, 429 busy, 503 unavailable. */
  readonly status: number;
  /** The `Retry-After` seconds jailkeeper would send; undefined for a permanent ban or `retryAfter: false`. */
  readonly retryAfter: string | undefined;
  /** The ban, for `'banned'`. */
  readonly ban: Ban | null;
  /** The client as jailkeeper resolved it. */
  readonly client: ClientIdentity;
}

const BUSY_BODY = JSON.stringify({ error: 'Too Many Requests' });
const UNAVAILABLE_BODY = JSON.stringify({ error: 'Service Unavailable' });
const JSON_TYPE = 'application/json; charset=utf-8';

/** What to answer: the reason, status and Retry-After of a refusal. `verdict` null: busy. */
export function refusalInfo(
  refusal: ResolvedRefusal,
  verdict: Banned | null,
  identity: ClientIdentity,
  nowMs: number,
): RefusalInfo {
  if (verdict === null) return { reason: 'busy', status: 429, retryAfter: '1', ban: null, client: identity };
  if (verdict.jail === RESERVED_JAILS.storeDown) {
    const retryAfter = retryAfterSeconds(verdict.untilMs, nowMs);
    return { reason: 'unavailable', status: 503, retryAfter, ban: null, client: identity };
  }
  const retryAfter = refusal.retryAfter
    ? retryAfterSeconds(verdict.untilMs, nowMs, verdict.ban.startMs)
    : undefined;
  return { reason: 'banned', status: refusal.status, retryAfter, ban: verdict.ban, client: identity };
}

/** The raw HTTP answer to a refused upgrade (no framework there): the refusal's status, headers and body. */
export function upgradeAnswer(refusal: ResolvedRefusal, verdict: Banned, nowMs: number): string {
  const info = refusalInfo(refusal, verdict, { ip: '', key: '' }, nowMs);
  const body = info.reason === 'unavailable' ? UNAVAILABLE_BODY : refusal.body;
  const lines = [`HTTP/1.1 ${info.status} ${STATUS_CODES[info.status] ?? 'Refused'}`, 'Connection: close'];
  if (info.reason === 'unavailable') lines.push(`content-type: ${JSON_TYPE}`);
  else for (const [name, value] of refusal.headers) lines.push(`${name}: ${value}`);
  if (info.retryAfter !== undefined) lines.push(`retry-after: ${info.retryAfter}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
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
 * Refuses a request, the same way on every adapter: for a ban, `drop` destroys the connection (a
 * client behind a trusted proxy gets the status instead, since destroying the proxy's pooled
 * connection would cut other clients); otherwise the status, the headers, `Retry-After` with the
 * seconds left (never for a permanent ban), and the body. Busy attempts get 429, a store that is
 * down and fails closed 503, each with Retry-After.
 */
export function writeRefusal<T>(
  writer: RefusalWriter<T>,
  target: T,
  refusal: ResolvedRefusal,
  info: RefusalInfo,
): void {
  if (info.reason !== 'banned') {
    writer.status(target, info.status);
    writer.header(target, 'content-type', JSON_TYPE);
    if (info.retryAfter !== undefined) writer.header(target, 'retry-after', info.retryAfter);
    writer.send(target, info.reason === 'busy' ? BUSY_BODY : UNAVAILABLE_BODY);
    return;
  }
  if (refusal.drop && info.client.viaProxy !== true) {
    writer.drop(target);
    return;
  }
  writer.status(target, info.status);
  for (const [name, value] of refusal.headers) writer.header(target, name, value);
  if (info.retryAfter !== undefined) writer.header(target, 'retry-after', info.retryAfter);
  writer.send(target, refusal.body);
}
