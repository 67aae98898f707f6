import { invalid } from './errors.js';
import { checkKeys } from './options.js';

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
}

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

/** The path of a request URL, without its query string. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
