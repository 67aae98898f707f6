import { invalid, JailkeeperConfigError } from '../errors.js';

/** The keys an options object may have; a mapped type keeps each list in step with its options type. */
export type KeyList<T> = { readonly [K in keyof Required<T>]: true };

const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;

/**
 * Names other tools use for an option jailkeeper names differently: express-rate-limit's and
 * @fastify/rate-limit's, and fail2ban's spellings that case alone does not explain. Suggested only
 * where the target is one of the valid keys.
 */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  max: ['maxRetry'],
  limit: ['maxRetry'],
  windowMs: ['findTime'],
  timeWindow: ['findTime'],
  window: ['findTime'],
  duration: ['banTime', 'for'],
  blockDuration: ['banTime'],
  allowList: ['ignoreIp'],
  whitelist: ['ignoreIp'],
  keyGenerator: ['key'],
  statusCodes: ['statuses'],
  statusCode: ['statuses'],
  trustProxy: ['trustedProxies'],
};

/** Edit distance with transpositions (optimal string alignment), case-insensitive. */
function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= s.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) {
        best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
  }
  return (d[s.length] as number[])[t.length] as number;
}

/**
 * The valid names nearest to a mistaken one: another tool's name for it, the same name in another
 * case, or a name a few edits away (at most a third of its length, and at least 2: `maxRetries`
 * finds `maxRetry`). Empty when nothing is near. Runs at setup only, on a rejected key.
 */
export function nearest(name: string, valid: readonly string[]): string[] {
  const alias = Object.hasOwn(ALIASES, name)
    ? ALIASES[name]?.find((target) => valid.includes(target))
    : undefined;
  if (alias !== undefined) return [alias];
  const within = Math.max(2, Math.floor(name.length / 3));
  const lower = name.toLowerCase();
  let best = Number.POSITIVE_INFINITY;
  let found: string[] = [];
  for (const candidate of valid) {
    const d = distance(name, candidate);
    // One name inside the other (maxRetryCount, banTimeMs) is near whatever the edits.
    const inside = candidate.length >= 4 && lower.startsWith(candidate.toLowerCase());
    const score = d <= within ? d : inside ? within : Number.POSITIVE_INFINITY;
    if (score < best) {
      best = score;
      found = [candidate];
    } else if (score === best && score !== Number.POSITIVE_INFINITY) found.push(candidate);
  }
  return found;
}

/** ` Did you mean maxRetry?` or ` Did you mean a or b?`, or nothing when nothing is near. */
export function didYouMean(name: string, valid: readonly string[]): string {
  const near = nearest(name, valid);
  if (near.length === 0) return '';
  return ` Did you mean ${near.length === 1 ? near[0] : `${near.slice(0, -1).join(', ')} or ${near.at(-1)}`}?`;
}

/** Keys valid at another level of the options, and where they go: named when one is given here. */
export interface KeysElsewhere {
  readonly keys: readonly string[];
  /** Where they belong, as the rest of a sentence: `a jail's option: set it in jails.<name>`. */
  readonly where: string;
}

/**
 * Throws for a non-object, and for keys that are not in `valid`: the message suggests the nearest
 * valid key (`maxRetries`: did you mean maxRetry?), or says where a key of another level goes
 * (`elsewhere`), and lists the valid keys.
 */
export function checkKeys(
  path: string,
  value: unknown,
  valid: Readonly<Record<string, true>>,
  elsewhere?: KeysElsewhere,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(path, 'an object', value);
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(valid, key)) {
      const names = Object.keys(valid);
      let hint = didYouMean(key, names);
      if (hint === '' && elsewhere !== undefined) {
        const near = elsewhere.keys.includes(key) ? [key] : nearest(key, elsewhere.keys);
        if (near.length === 1 && near[0] === key) hint = ` ${key} is ${elsewhere.where}.`;
        else if (near.length > 0) hint = `${didYouMean(key, elsewhere.keys)} It is ${elsewhere.where}.`;
      }
      throw new JailkeeperConfigError(
        'JK_ERR_UNKNOWN_OPTION',
        path === '' ? key : `${path}.${key}`,
        `${path === '' ? 'options' : path} has an unknown key ${JSON.stringify(key)}.${hint} The valid keys are ${names.join(', ')}.`,
      );
    }
  }
  return value as Record<string, unknown>;
}

/** A positive integer (at most `max`), or `fallback` when not set. */
export function positiveInteger(
  path: string,
  value: unknown,
  fallback: number,
  { max = Number.MAX_SAFE_INTEGER } = {},
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    invalid(
      path,
      max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from 1 to ${max}`,
      value,
    );
  }
  return value;
}

/** true or false, or `fallback` when not set. */
export function bool(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(path, 'true or false', value);
  return value;
}

/** A non-empty array of HTTP statuses within `range`, as a Set; null when not set. */
export function statusSet(
  path: string,
  value: unknown,
  range: readonly [number, number],
  what: string,
): Set<number> | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.length === 0) invalid(path, `a non-empty array of ${what}`, value);
  const out = new Set<number>();
  value.forEach((status: unknown, i) => {
    if (typeof status !== 'number' || !Number.isInteger(status) || status < range[0] || status > range[1]) {
      invalid(
        `${path}[${i}]`,
        `${what} (an integer from ${range[0]} to ${range[1]})`,
        status,
        'JK_ERR_INVALID_STATUS',
      );
    }
    out.add(status);
  });
  return out;
}

/** A non-empty array of HTTP methods, upper-cased, as a Set; null when not set. */
export function methodSet(path: string, value: unknown): Set<string> | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.length === 0) invalid(path, 'a non-empty array of HTTP methods', value);
  return new Set(
    value.map((method: unknown, i) => {
      if (typeof method !== 'string' || !METHOD.test(method.toUpperCase())) {
        invalid(`${path}[${i}]`, 'an HTTP method such as "POST"', method);
      }
      return method.toUpperCase();
    }),
  );
}
