import type { Clock } from '../clock.js';
import { DEFAULTS, JAIL_NAME, RESERVED_JAILS } from '../config/defaults.js';
import { toBanTimeMs, toDurationMs } from '../config/duration.js';
import { bool, checkKeys, type KeyList, positiveInteger } from '../config/validate.js';
import { invalid, JailkeeperConfigError, type Logger, type WarningCode } from '../errors.js';
import { type ClientIpOptions, resolveClientIpOptions } from '../identity/client-ip.js';
import { networkList } from '../identity/ip-set.js';
import type { Store } from '../store/store.js';
import type {
  AttemptOptions,
  Ipv6RangeBanOptions,
  JailkeeperOptions,
  RecidiveOptions,
  ResolvedJail,
  ResolvedOptions,
  ResolvedRecidive,
} from './options.js';
import { JAIL_KEYS, resolveJail } from './resolve-jail.js';
import { resolveVerifiedCrawlers } from './verified-crawlers.js';

// A mapped type keeps each list of valid keys in step with its options type.
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
  normalizeAccount: true,
  ipv6Subnet: true,
  logger: true,
  clock: true,
  sweepInterval: true,
  trustedProxies: true,
  clientIpHeader: true,
  dangerouslyTrustAllProxies: true,
  getClientIp: true,
  closeConnectionsOnBan: true,
  attempts: true,
  verifiedCrawlers: true,
  ipv6RangeBan: true,
};
const ATTEMPT_KEYS: KeyList<AttemptOptions> = { hold: true, wait: true };
const RANGE_KEYS: KeyList<Ipv6RangeBanOptions> = { prefix: true, threshold: true };

function resolveRangeBan(value: unknown, ipv6Subnet: number): ResolvedOptions['ipv6RangeBan'] {
  if (value === undefined || value === false) return null;
  const input = value === true ? {} : checkKeys('ipv6RangeBan', value, RANGE_KEYS);
  const prefix = positiveInteger('ipv6RangeBan.prefix', input.prefix, 48, { max: 127 });
  if (prefix >= ipv6Subnet) {
    invalid('ipv6RangeBan.prefix', `a prefix length shorter than ipv6Subnet (${ipv6Subnet})`, prefix);
  }
  const threshold = positiveInteger('ipv6RangeBan.threshold', input.threshold, 8);
  if (threshold < 2) invalid('ipv6RangeBan.threshold', 'an integer of 2 or more', threshold);
  return Object.freeze({ prefix, threshold });
}
const RECIDIVE_KEYS: KeyList<RecidiveOptions> = {
  maxRetry: true,
  findTime: true,
  banTime: true,
  jails: true,
  dryRun: true,
};

/** A doubtful configuration that is valid: warned once at startup, reported by `check-config`. */
export interface ConfigWarning {
  readonly code: WarningCode;
  /** The option to change, as in errors: `jails.login.statuses`. */
  readonly option: string;
  readonly message: string;
}

/**
 * The doubtful parts of a valid configuration. A jail that names `paths` but no `statuses` (nor
 * user agents) counts every response on those paths, successes included: `{ paths: ['/login'] }`
 * bans users who log in. It is said in words with `statuses: 'any'`.
 */
export function configWarnings(options: ResolvedOptions): ConfigWarning[] {
  const warnings: ConfigWarning[] = options.jails
    .filter((jail) => jail.countsEveryStatusUnsaid)
    .map((jail) => ({
      code: 'JK_WRN_COUNTS_EVERY_STATUS' as const,
      option: `jails.${jail.name}.statuses`,
      message: `jails.${jail.name} names paths (${jail.paths.source.slice(0, 3).join(', ')}) but no statuses, so it counts every response there, successes included (a login that succeeds counts as a failure). Name the failure statuses (e.g. statuses: [401]), or say statuses: "any" if every response there is a failure (a honeypot path).`,
    }));
  // Guesses on one route are one path: counted once, a password could be guessed without end.
  for (const jail of options.jails) {
    if (jail.distinct !== null && (jail.statuses === null || jail.statuses.has(401))) {
      warnings.push({
        code: 'JK_WRN_DISTINCT_GUESSES',
        option: `jails.${jail.name}.distinct`,
        message: `jails.${jail.name} counts each path once (distinct: "${jail.distinct}") and counts 401s: every guess at one sign-in route is the same path, so a password guesser would be counted once per findTime. Keep distinct for 404 and 403 jails, and count sign-in failures in a jail without it (presets.login).`,
      });
    }
  }
  return warnings;
}

function resolveAttempts(value: unknown): ResolvedOptions['attempts'] {
  const input = value === undefined ? {} : checkKeys('attempts', value, ATTEMPT_KEYS);
  return Object.freeze({
    holdMs: input.hold === undefined ? DEFAULTS.attemptHoldMs : toDurationMs('attempts.hold', input.hold),
    waitMs:
      input.wait === undefined
        ? DEFAULTS.attemptWaitMs
        : toDurationMs('attempts.wait', input.wait, { allowZero: true }),
  });
}

/** Validates options once and returns the frozen, compiled result. Throws {@link JailkeeperConfigError}. */
export function resolveOptions(input: JailkeeperOptions): ResolvedOptions {
  const top = checkKeys('', input, TOP_KEYS, {
    keys: Object.keys(JAIL_KEYS),
    where: "a jail's option: set it in jails.<name>, or in defaults for every jail",
  });
  const dryRun = bool('dryRun', top.dryRun, false);
  const defaults = top.defaults === undefined ? {} : checkKeys('defaults', top.defaults, JAIL_KEYS);

  let recidive: ResolvedRecidive | null = null;
  let recidiveJails: Set<string> | null = null;
  if (top.recidive !== undefined && top.recidive !== false) {
    const r = top.recidive === true ? {} : checkKeys('recidive', top.recidive, RECIDIVE_KEYS);
    recidive = Object.freeze({
      maxRetry: positiveInteger('recidive.maxRetry', r.maxRetry, DEFAULTS.recidive.maxRetry),
      findTimeMs:
        r.findTime === undefined
          ? DEFAULTS.recidive.findTimeMs
          : toDurationMs('recidive.findTime', r.findTime),
      banTimeMs:
        r.banTime === undefined ? DEFAULTS.recidive.banTimeMs : toBanTimeMs('recidive.banTime', r.banTime),
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
      top.historyTime === undefined ? DEFAULTS.historyTimeMs : toDurationMs('historyTime', top.historyTime),
    store,
    persist: top.persist as string | undefined,
    maxTrackedClients: positiveInteger(
      'maxTrackedClients',
      top.maxTrackedClients,
      DEFAULTS.maxTrackedClients,
    ),
    normalizeAccount: optionalFunction<(name: string) => string | undefined>(
      'normalizeAccount',
      top.normalizeAccount,
    ),
    ipv6Subnet: positiveInteger('ipv6Subnet', top.ipv6Subnet, DEFAULTS.ipv6Subnet, { max: 128 }),
    clientIp: resolveClientIpOptions(top as ClientIpOptions),
    logger,
    clock,
    sweepIntervalMs:
      top.sweepInterval === undefined
        ? DEFAULTS.sweepIntervalMs
        : toDurationMs('sweepInterval', top.sweepInterval),
    closeConnectionsOnBan: bool('closeConnectionsOnBan', top.closeConnectionsOnBan, true),
    attempts: resolveAttempts(top.attempts),
    verifiedCrawlers: resolveVerifiedCrawlers(top.verifiedCrawlers, names),
    ipv6RangeBan: resolveRangeBan(
      top.ipv6RangeBan,
      positiveInteger('ipv6Subnet', top.ipv6Subnet, DEFAULTS.ipv6Subnet, { max: 128 }),
    ),
  });
}

function optionalFunction<F extends Function>(path: string, value: unknown): F | undefined {
  if (value !== undefined && typeof value !== 'function') invalid(path, 'a function', value);
  return value as F | undefined;
}
