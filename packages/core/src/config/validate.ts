import { invalid, JailkeeperConfigError } from '../errors.js';

/** The keys an options object may have; a mapped type keeps each list in step with its options type. */
export type KeyList<T> = { readonly [K in keyof Required<T>]: true };

const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;

/** Throws for a non-object, and for keys that are not in `valid` (listing the valid ones). */
export function checkKeys(
  path: string,
  value: unknown,
  valid: Readonly<Record<string, true>>,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(path, 'an object', value);
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(valid, key)) {
      throw new JailkeeperConfigError(
        'JK_ERR_UNKNOWN_OPTION',
        path === '' ? key : `${path}.${key}`,
        `${path === '' ? 'options' : path} has an unknown key ${JSON.stringify(key)}; valid keys are ${Object.keys(valid).join(', ')}.`,
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
