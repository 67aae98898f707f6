import { invalid } from '../errors.js';

/** A unit of a duration string, in lower case (the parser also reads upper case, from files). */
export type DurationUnit =
  | 'ms'
  | 's'
  | 'sec'
  | 'second'
  | 'seconds'
  | 'm'
  | 'min'
  | 'minute'
  | 'minutes'
  | 'h'
  | 'hour'
  | 'hours'
  | 'd'
  | 'day'
  | 'days'
  | 'w'
  | 'week'
  | 'weeks'
  | 'mo'
  | 'mon'
  | 'month'
  | 'months'
  | 'y'
  | 'year'
  | 'years';

/** One `<number><unit>` part of a duration string: `'10m'`, `'1.5h'`, `'2 hours'`. */
type DurationPart = `${number}${DurationUnit}`;
/** A part with a short unit: `'1d'`, `'12h'`. */
type ShortDurationPart = `${number}${'ms' | 's' | 'm' | 'h' | 'd' | 'w' | 'mo' | 'y'}`;

/**
 * A fail2ban-style duration string, typed so that a misspelt unit (`'10mins'`) is a compile error:
 * a bare number of seconds (`'90'`), one `<number><unit>` part (`'10m'`, `'2 hours'`), or two with
 * short units (`'1d12h'`, `'1h 30m'`). The parser reads more (more parts, long units in several
 * parts, upper case), which the type leaves out to stay small: a union of every combination would
 * slow the compiler down in every program that uses it. Such a string, or one from elsewhere (a
 * file, the environment), is a `string`: give it to `parseDuration()`, or cast it
 * `as DurationString` and let startup validate it.
 */
export type DurationString = `${number}` | DurationPart | `${ShortDurationPart}${ShortDurationPart}`;

/** A duration: milliseconds, or a fail2ban-style string such as `'10m'`, `'1d12h'`, `'1w'`, `'1mo'`. */
export type Duration = number | DurationString;

/** A ban's length: a duration, or `-1` / `'permanent'` for a ban that never ends. */
export type BanDuration = Duration | 'permanent';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// fail2ban's own values: a year is 365.25 days and a month a twelfth of it.
const YEAR = (365 * 3 + 366) * (DAY / 4);
const MONTH = YEAR / 12;

// Keyed by DurationUnit, so that the type and the parser know the same units.
const UNITS: Readonly<Record<DurationUnit, number>> = {
  ms: 1,
  s: SECOND,
  sec: SECOND,
  second: SECOND,
  seconds: SECOND,
  m: MINUTE,
  min: MINUTE,
  minute: MINUTE,
  minutes: MINUTE,
  h: HOUR,
  hour: HOUR,
  hours: HOUR,
  d: DAY,
  day: DAY,
  days: DAY,
  w: 7 * DAY,
  week: 7 * DAY,
  weeks: 7 * DAY,
  mo: MONTH,
  mon: MONTH,
  month: MONTH,
  months: MONTH,
  y: YEAR,
  year: YEAR,
  years: YEAR,
};

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;

/**
 * Parses a duration into milliseconds. Strings are sequences of `<number><unit>` with units
 * ms, s, m, h, d, w, mo, y (and their long forms); a bare numeric string is seconds, as in fail2ban.
 * Returns `undefined` when the text does not parse.
 */
export function parseDuration(value: Duration | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim().toLowerCase();
  if (text === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * SECOND;
  let total = 0;
  PART.lastIndex = 0;
  let consumed = 0;
  for (let match = PART.exec(text); match !== null; match = PART.exec(text)) {
    const name = match[2] as string;
    // Own keys only: '1constructor' is not a duration.
    const unit = Object.hasOwn(UNITS, name) ? UNITS[name as DurationUnit] : undefined;
    if (unit === undefined) return undefined;
    total += Number(match[1]) * unit;
    consumed = PART.lastIndex;
  }
  return consumed === text.length ? Math.round(total) : undefined;
}

/** Validates and converts a positive duration option; `path` names the option in the error. */
export function toDurationMs(path: string, value: unknown, { allowZero = false } = {}): number {
  const ms = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined || ms < 0 || (!allowZero && ms === 0) || !Number.isSafeInteger(Math.round(ms))) {
    invalid(
      path,
      `a ${allowZero ? 'non-negative' : 'positive'} duration (ms or a string such as "10m", "1d12h")`,
      value,
      'JK_ERR_INVALID_DURATION',
    );
  }
  return Math.round(ms);
}

/** A ban duration: a positive duration, or `-1` / `'permanent'` for a ban that never ends (Infinity). */
export function toBanTimeMs(path: string, value: unknown): number {
  if (value === -1 || value === 'permanent' || value === '-1') return Number.POSITIVE_INFINITY;
  const ms = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined || ms <= 0 || !Number.isSafeInteger(Math.round(ms))) {
    invalid(
      path,
      'a positive duration (ms or "10m"), or -1 / "permanent" for a ban that never ends',
      value,
      'JK_ERR_INVALID_DURATION',
    );
  }
  return Math.round(ms);
}

/** Formats milliseconds the fail2ban way, for messages and tables: `1d2h`, `45s`, `permanent`. */
export function formatDuration(ms: number): string {
  if (ms === Number.POSITIVE_INFINITY) return 'permanent';
  if (ms < SECOND) return `${Math.max(0, Math.round(ms))}ms`;
  let rest = Math.round(ms / SECOND) * SECOND;
  let out = '';
  for (const [unit, size] of [
    ['w', 7 * DAY],
    ['d', DAY],
    ['h', HOUR],
    ['m', MINUTE],
    ['s', SECOND],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
