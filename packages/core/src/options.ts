import { type ClientIpOptions, type ResolvedClientIpOptions, resolveClientIpOptions } from './client-ip.js';
import type { Clock } from './clock.js';
import type { Duration } from './duration.js';
import { toBanTimeMs, toDurationMs } from './duration.js';
import { invalid, JailkeeperConfigError, type Logger } from './errors.js';
import type { Cidr } from './ip.js';
import { networkList } from './ip-set.js';
import { compilePaths, compileUserAgents, type PathMatcher, type PathPattern } from './path-pattern.js';
import type { Store } from './store.js';
// [issue 21: verified crawlers] the option's type and its validation live in verified-crawlers.ts.
import {
  type ResolvedVerifiedCrawlers,
  resolveVerifiedCrawlers,
  type VerifiedCrawlersOptions,
} from './verified-crawlers.js';

/** Escalation of repeat offenders, like fail2ban's `bantime.increment`. */
export interface BanTimeIncrementOptions {
  /**
   * Multiplies every escalated ban. Without `multipliers`, ban n+1 lasts `banTime × factor × 2^n`
   * (n = the client's earlier bans, capped at 20).
   * @default 1
   */
  factor?: number;
  /** Explicit multipliers by earlier-ban count, e.g. `[1, 2, 4, 8, 16, 32, 64]`; the last repeats. */
  multipliers?: number[];
  /** The longest an escalated ban may last. @default '1w' */
  maxTime?: Duration;
  /** A random extra of up to this much, so that a botnet's bans do not all end together. @default 0 */
  jitter?: Duration;
  /** Count earlier bans in every jail, not only this one. @default false */
  overallJails?: boolean;
}

/**
 * A higher threshold after a success, for the whitelist-after-login case: a client whose request
 * matches gets `maxRetry` in this jail for `for`, instead of immunity.
 */
export interface PardonOptions {
  /** Statuses that prove a success. @default [200] */
  statuses?: number[];
  /** Paths (route patterns) of the success, e.g. `['/login']`. @default the jail's `paths` */
  paths?: PathPattern[];
  /** Methods of the success. @default any */
  methods?: string[];
  /** How long the pardon lasts; each success renews it. @default '30d' */
  for?: Duration;
  /** The threshold while pardoned. `Infinity` is the article's full whitelist: unsafe, see the docs. @default 4 × the jail's maxRetry */
  maxRetry?: number;
}

/** One jail: which responses are failures, and the thresholds. */
export interface JailOptions {
  /** Response statuses counted as failures (400 to 599). @default any, when `paths` or `userAgents` are given */
  statuses?: number[];
  /** Request methods counted. @default any */
  methods?: string[];
  /** Route patterns (or paths, for unrouted requests) this jail watches. @default every path */
  paths?: PathPattern[];
  /** Route patterns that never count, e.g. `['/ws', '/healthz']`. */
  exempt?: PathPattern[];
  /** User agents that count on sight (RegExps, or case-insensitive substrings). */
  userAgents?: Array<RegExp | string>;
  /** Failures within `findTime` that ban. @default 5 */
  maxRetry?: number;
  /** The sliding window failures are counted in. @default '10m' */
  findTime?: Duration;
  /** How long a ban lasts; -1 or 'permanent' for ever. @default '10m' */
  banTime?: Duration;
  /** `'app'`: refused everywhere (banaction_allports); `'jail'`: only on the routes this jail watches. @default 'app' */
  scope?: 'app' | 'jail';
  /** Escalation for repeat offenders; `true` for the defaults. @default off */
  banTimeIncrement?: BanTimeIncrementOptions | boolean;
  /** A higher threshold after a success. @default off */
  pardon?: PardonOptions | false;
  /** Count and report, fire `wouldBan`, block nothing. @default the global dryRun */
  dryRun?: boolean;
  /** A disabled jail is validated and then ignored. @default true */
  enabled?: boolean;
}

/** The recidive jail: a client banned `maxRetry` times within `findTime` is banned everywhere for `banTime`. */
export interface RecidiveOptions {
  /** @default 5 */
  maxRetry?: number;
  /** @default '1d' */
  findTime?: Duration;
  /** @default '1w' */
  banTime?: Duration;
  /** The jails whose bans count. @default all */
  jails?: string[];
  /** @default the global dryRun */
  dryRun?: boolean;
}

/** Options of {@link createJailkeeper}. The identity options are described on {@link ClientIpOptions}. */
export interface JailkeeperOptions extends ClientIpOptions {
  /** The jails, by name (letters, digits, `.`, `_`, `-`). */
  jails: Record<string, JailOptions>;
  /** Options every jail inherits, like fail2ban's [DEFAULT]. */
  defaults?: JailOptions;
  /** Addresses, CIDRs and named ranges (`'loopback'`, `'private'`) never counted nor banned. @default [] */
  ignoreIp?: string[];
  /** The recidive jail; `true` for fail2ban's defaults (5 bans in 1d ban for 1w). @default off */
  recidive?: RecidiveOptions | boolean;
  /** Dry run for every jail. @default false */
  dryRun?: boolean;
  /** How long a client's ban history is kept after its last ban ends (fail2ban's dbpurgeage). @default '1d' */
  historyTime?: Duration;
  /** Where counters and bans live. @default an in-memory store */
  store?: Store;
  /** With the default store: a file that keeps bans and history across restarts. */
  persist?: string;
  /** With the default store: the most failure counters kept. @default 100000 */
  maxTrackedClients?: number;
  /** IPv6 clients are grouped by this prefix length (1 to 128). @default 64 */
  ipv6Subnet?: number;
  /** A pino-compatible logger: one line per ban and unban, warnings once. */
  logger?: Logger;
  /** The time source, for tests. @default Date.now */
  clock?: Clock;
  /** How often expired bans are swept and announced. @default '1s' */
  sweepInterval?: Duration;
  /** When a client is banned, close its open keep-alive and WebSocket connections on this instance. @default true */
  closeConnectionsOnBan?: boolean;
  /** [issue 21] Spare verified crawlers: a client claiming to be Googlebot or Bingbot is checked by DNS before it is counted; `true` for every jail. @default off */
  verifiedCrawlers?: VerifiedCrawlersOptions | boolean;
}

/** A jail after validation: durations in ms, paths compiled. */
export interface ResolvedJail {
  readonly name: string;
  readonly statuses: ReadonlySet<number> | null;
  readonly methods: ReadonlySet<string> | null;
  readonly paths: PathMatcher;
  readonly exempt: PathMatcher;
  readonly userAgent: ((ua: string) => boolean) | undefined;
  readonly maxRetry: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
  readonly scope: 'app' | 'jail';
  readonly increment: ResolvedIncrement | null;
  readonly pardon: ResolvedPardon | null;
  readonly dryRun: boolean;
  /** True for a jail whose bans are counted by the recidive jail. */
  readonly feedsRecidive: boolean;
}

export interface ResolvedIncrement {
  readonly factor: number;
  readonly multipliers: readonly number[] | null;
  readonly maxTimeMs: number;
  readonly jitterMs: number;
  readonly overallJails: boolean;
}

export interface ResolvedPardon {
  readonly statuses: ReadonlySet<number>;
  readonly paths: PathMatcher;
  readonly methods: ReadonlySet<string> | null;
  readonly forMs: number;
  readonly maxRetry: number;
}

export interface ResolvedRecidive {
  readonly maxRetry: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
  readonly dryRun: boolean;
}

export interface ResolvedOptions {
  readonly jails: readonly ResolvedJail[];
  readonly jailsByName: ReadonlyMap<string, ResolvedJail>;
  readonly ignoreIp: readonly Cidr[];
  readonly recidive: ResolvedRecidive | null;
  readonly historyTimeMs: number;
  readonly store: Store | undefined;
  readonly persist: string | undefined;
  readonly maxTrackedClients: number;
  readonly ipv6Subnet: number;
  readonly clientIp: ResolvedClientIpOptions;
  readonly logger: Logger | undefined;
  readonly clock: Clock | undefined;
  readonly sweepIntervalMs: number;
  readonly closeConnectionsOnBan: boolean;
  /** [issue 21: verified crawlers] */
  readonly verifiedCrawlers: ResolvedVerifiedCrawlers | null;
}

/** Jail names that jailkeeper uses itself. */
export const RESERVED_JAILS = Object.freeze({
  recidive: 'recidive',
  manual: 'manual',
  storeDown: 'store-unavailable',
});

const JAIL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;

// A mapped type keeps each list of valid keys in step with its options type.
type KeyList<T> = { readonly [K in keyof Required<T>]: true };
const TOP_KEYS: KeyList<JailkeeperOptions> = {
  jails: true,
  defaults: true,
  ignoreIp: true,
  recidive: true,
  dryRun: true,
  historyTime: true,
  store: true,
  persist: true,
  maxTrackedClients: true,
  ipv6Subnet: true,
  logger: true,
  clock: true,
  sweepInterval: true,
  trustedProxies: true,
  clientIpHeader: true,
  dangerouslyTrustAllProxies: true,
  getClientIp: true,
  closeConnectionsOnBan: true,
  verifiedCrawlers: true, // [issue 21: verified crawlers]
};
const JAIL_KEYS: KeyList<JailOptions> = {
  statuses: true,
  methods: true,
  paths: true,
  exempt: true,
  userAgents: true,
  maxRetry: true,
  findTime: true,
  banTime: true,
  scope: true,
  banTimeIncrement: true,
  pardon: true,
  dryRun: true,
  enabled: true,
};
const INCREMENT_KEYS: KeyList<BanTimeIncrementOptions> = {
  factor: true,
  multipliers: true,
  maxTime: true,
  jitter: true,
  overallJails: true,
};
const PARDON_KEYS: KeyList<PardonOptions> = {
  statuses: true,
  paths: true,
  methods: true,
  for: true,
  maxRetry: true,
};
const RECIDIVE_KEYS: KeyList<RecidiveOptions> = {
  maxRetry: true,
  findTime: true,
  banTime: true,
  jails: true,
  dryRun: true,
};

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

export function positiveInteger(
  path: string,
  value: unknown,
  fallback: number,
  { max = Number.MAX_SAFE_INTEGER } = {},
) {
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

function bool(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(path, 'true or false', value);
  return value;
}

function statusSet(path: string, value: unknown, range: [number, number], what: string): Set<number> | null {
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

function methodSet(path: string, value: unknown): Set<string> | null {
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

function resolveIncrement(path: string, value: unknown): ResolvedIncrement | null {
  if (value === undefined || value === false) return null;
  const input = value === true ? {} : checkKeys(path, value, INCREMENT_KEYS);
  const factor = input.factor ?? 1;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 0) {
    invalid(`${path}.factor`, 'a positive number', factor);
  }
  let multipliers: number[] | null = null;
  if (input.multipliers !== undefined) {
    const list = input.multipliers;
    if (!Array.isArray(list) || list.length === 0)
      invalid(`${path}.multipliers`, 'a non-empty array of positive numbers', list);
    multipliers = list.map((m: unknown, i) => {
      if (typeof m !== 'number' || !Number.isFinite(m) || m <= 0)
        invalid(`${path}.multipliers[${i}]`, 'a positive number', m);
      return m;
    });
  }
  return Object.freeze({
    factor,
    multipliers: multipliers && Object.freeze(multipliers),
    maxTimeMs:
      input.maxTime === undefined ? 7 * 24 * 3600_000 : toBanTimeMs(`${path}.maxTime`, input.maxTime),
    jitterMs:
      input.jitter === undefined ? 0 : toDurationMs(`${path}.jitter`, input.jitter, { allowZero: true }),
    overallJails: bool(`${path}.overallJails`, input.overallJails, false),
  });
}

function resolveJail(
  name: string,
  raw: unknown,
  defaults: Record<string, unknown>,
  globalDryRun: boolean,
  feedsRecidive: boolean,
): ResolvedJail | null {
  const path = `jails.${name}`;
  const own = checkKeys(path, raw, JAIL_KEYS);
  const input: Record<string, unknown> = { ...defaults, ...own };
  const at = (key: string) => (Object.hasOwn(own, key) ? `${path}.${key}` : `defaults.${key}`);
  if (!bool(at('enabled'), input.enabled, true)) return null;

  const statuses = statusSet(at('statuses'), input.statuses, [400, 599], 'failure statuses');
  const paths = compilePaths(at('paths'), input.paths);
  const userAgent = compileUserAgents(at('userAgents'), input.userAgents);
  if (statuses === null && paths.isEmpty && userAgent === undefined) {
    throw new JailkeeperConfigError(
      'JK_ERR_JAIL_MATCHES_NOTHING',
      path,
      `${path} must name statuses (e.g. [401, 403]), paths or userAgents; a jail with none of them would count nothing.`,
    );
  }
  const maxRetry = positiveInteger(at('maxRetry'), input.maxRetry, 5);
  const scope = input.scope ?? 'app';
  if (scope !== 'app' && scope !== 'jail') invalid(at('scope'), '"app" or "jail"', scope);

  let pardon: ResolvedPardon | null = null;
  if (input.pardon !== undefined && input.pardon !== false) {
    const p = checkKeys(at('pardon'), input.pardon, PARDON_KEYS);
    const pathP = `${at('pardon')}`;
    const pardonStatuses =
      statusSet(`${pathP}.statuses`, p.statuses, [100, 599], 'success statuses') ?? new Set([200]);
    const counted = statuses ?? new Set(Array.from({ length: 500 }, (_, i) => i + 100));
    const overlap = [...pardonStatuses].filter((s) => counted.has(s));
    if (overlap.length > 0) {
      throw new JailkeeperConfigError(
        'JK_ERR_PARDON_OVERLAP',
        `${pathP}.statuses`,
        `${pathP}.statuses must not overlap the statuses the jail counts as failures; both hold ${overlap.slice(0, 5).join(', ')}${statuses === null ? ' (the jail counts every status because it names none)' : ''}.`,
      );
    }
    const pardonPaths = p.paths === undefined ? paths : compilePaths(`${pathP}.paths`, p.paths);
    if (pardonPaths.isEmpty) {
      invalid(
        `${pathP}.paths`,
        'the paths of the success (the jail names none, so every 200 would pardon)',
        p.paths,
      );
    }
    const pardonMax = p.maxRetry ?? maxRetry * 4;
    if (pardonMax !== Number.POSITIVE_INFINITY) positiveInteger(`${pathP}.maxRetry`, pardonMax, 0);
    if (typeof pardonMax !== 'number')
      invalid(`${pathP}.maxRetry`, 'a positive integer or Infinity', pardonMax);
    if (pardonMax < maxRetry)
      invalid(`${pathP}.maxRetry`, `at least the jail's maxRetry (${maxRetry})`, pardonMax);
    pardon = Object.freeze({
      statuses: pardonStatuses,
      paths: pardonPaths,
      methods: methodSet(`${pathP}.methods`, p.methods),
      forMs: p.for === undefined ? 30 * 24 * 3600_000 : toDurationMs(`${pathP}.for`, p.for),
      maxRetry: pardonMax as number,
    });
  }

  return Object.freeze({
    name,
    statuses,
    methods: methodSet(at('methods'), input.methods),
    paths,
    exempt: compilePaths(at('exempt'), input.exempt),
    userAgent,
    maxRetry,
    findTimeMs: input.findTime === undefined ? 600_000 : toDurationMs(at('findTime'), input.findTime),
    banTimeMs: input.banTime === undefined ? 600_000 : toBanTimeMs(at('banTime'), input.banTime),
    scope: scope as 'app' | 'jail',
    increment: resolveIncrement(at('banTimeIncrement'), input.banTimeIncrement),
    pardon,
    dryRun: bool(at('dryRun'), input.dryRun, globalDryRun),
    feedsRecidive,
  });
}

/** Validates options once and returns the frozen, compiled result. Throws {@link JailkeeperConfigError}. */
export function resolveOptions(input: JailkeeperOptions): ResolvedOptions {
  const top = checkKeys('', input, TOP_KEYS);
  const dryRun = bool('dryRun', top.dryRun, false);
  const defaults = top.defaults === undefined ? {} : checkKeys('defaults', top.defaults, JAIL_KEYS);

  let recidive: ResolvedRecidive | null = null;
  let recidiveJails: Set<string> | null = null;
  if (top.recidive !== undefined && top.recidive !== false) {
    const r = top.recidive === true ? {} : checkKeys('recidive', top.recidive, RECIDIVE_KEYS);
    recidive = Object.freeze({
      maxRetry: positiveInteger('recidive.maxRetry', r.maxRetry, 5),
      findTimeMs: r.findTime === undefined ? 24 * 3600_000 : toDurationMs('recidive.findTime', r.findTime),
      banTimeMs: r.banTime === undefined ? 7 * 24 * 3600_000 : toBanTimeMs('recidive.banTime', r.banTime),
      dryRun: bool('recidive.dryRun', r.dryRun, dryRun),
    });
    if (r.jails !== undefined) {
      if (!Array.isArray(r.jails) || r.jails.length === 0)
        invalid('recidive.jails', 'a non-empty array of jail names', r.jails);
      recidiveJails = new Set(r.jails as string[]);
    }
  }

  if (typeof top.jails !== 'object' || top.jails === null || Array.isArray(top.jails)) {
    invalid(
      'jails',
      'an object of named jails, e.g. { login: { statuses: [401], paths: ["/login"] } }',
      top.jails,
    );
  }
  const names = Object.keys(top.jails);
  if (names.length === 0) invalid('jails', 'an object with at least one jail', top.jails);
  const jails: ResolvedJail[] = [];
  for (const name of names) {
    if (!JAIL_NAME.test(name)) {
      invalid(`jails.${name}`, 'named with letters, digits, ".", "_" or "-" (at most 64)', name);
    }
    if (name === RESERVED_JAILS.manual || (recidive !== null && name === RESERVED_JAILS.recidive)) {
      invalid(
        `jails.${name}`,
        `a name other than "${name}", which jailkeeper uses for its own ${name} bans`,
        name,
      );
    }
    const jail = resolveJail(
      name,
      (top.jails as Record<string, unknown>)[name],
      defaults,
      dryRun,
      recidive !== null && (recidiveJails === null || recidiveJails.has(name)),
    );
    if (jail) jails.push(jail);
  }
  if (recidiveJails) {
    for (const name of recidiveJails) {
      if (!names.includes(name))
        invalid('recidive.jails', `names of configured jails (${names.join(', ')})`, name);
    }
  }

  const store = top.store as Store | undefined;
  if (
    store !== undefined &&
    (typeof store !== 'object' || store === null || typeof store.recordFailure !== 'function')
  ) {
    invalid('store', 'a jailkeeper store (createMemoryStore(), createRedisStore())', store);
  }
  if (store !== undefined && (top.persist !== undefined || top.maxTrackedClients !== undefined)) {
    throw new JailkeeperConfigError(
      'JK_ERR_OPTION_CONFLICT',
      top.persist !== undefined ? 'persist' : 'maxTrackedClients',
      'persist and maxTrackedClients configure the default in-memory store; with your own store, pass them to createMemoryStore() instead.',
    );
  }
  if (top.persist !== undefined && (typeof top.persist !== 'string' || top.persist === '')) {
    invalid('persist', 'a file path', top.persist);
  }
  const logger = top.logger as Logger | undefined;
  if (
    logger !== undefined &&
    (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function')
  ) {
    invalid('logger', 'a pino-compatible logger with info, warn and error', logger);
  }
  const clock = top.clock as Clock | undefined;
  if (
    clock !== undefined &&
    (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function')
  ) {
    invalid('clock', 'an object with now(): number', clock);
  }

  return Object.freeze({
    jails: Object.freeze(jails),
    jailsByName: new Map(jails.map((j) => [j.name, j])),
    ignoreIp: Object.freeze(networkList('ignoreIp', top.ignoreIp)),
    recidive,
    historyTimeMs:
      top.historyTime === undefined ? 24 * 3600_000 : toDurationMs('historyTime', top.historyTime),
    store,
    persist: top.persist as string | undefined,
    maxTrackedClients: positiveInteger('maxTrackedClients', top.maxTrackedClients, 100_000),
    ipv6Subnet: positiveInteger('ipv6Subnet', top.ipv6Subnet, 64, { max: 128 }),
    clientIp: resolveClientIpOptions(top as ClientIpOptions),
    logger,
    clock,
    sweepIntervalMs:
      top.sweepInterval === undefined ? 1000 : toDurationMs('sweepInterval', top.sweepInterval),
    closeConnectionsOnBan: bool('closeConnectionsOnBan', top.closeConnectionsOnBan, true),
    // [issue 21: verified crawlers]
    verifiedCrawlers: resolveVerifiedCrawlers(top.verifiedCrawlers, names),
  });
}
