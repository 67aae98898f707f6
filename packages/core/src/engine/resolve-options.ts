import type { Clock } from '../clock.js';
import { DEFAULTS, JAIL_NAME, RESERVED_JAILS } from '../config/defaults.js';
import { toBanTimeMs, toDurationMs } from '../config/duration.js';
import { bool, checkKeys, type KeyList, methodSet, positiveInteger, statusSet } from '../config/validate.js';
import { invalid, JailkeeperConfigError, type Logger, type WarningCode } from '../errors.js';
import { type ClientIpOptions, resolveClientIpOptions } from '../identity/client-ip.js';
import { networkList } from '../identity/ip-set.js';
import { compilePaths, compileUserAgents } from '../paths/path-pattern.js';
import { compileProbes } from '../paths/probe-match.js';
import { PROBE_PATHS } from '../signatures/probe-paths.js';
import type { Store } from '../store/store.js';
import type {
  AttemptOptions,
  BanTimeIncrementOptions,
  Ipv6RangeBanOptions,
  JailkeeperOptions,
  JailOptions,
  PardonOptions,
  ProbeOptions,
  RecidiveOptions,
  ResolvedIncrement,
  ResolvedJail,
  ResolvedOptions,
  ResolvedPardon,
  ResolvedProbes,
  ResolvedRecidive,
  ResolvedSharedPaths,
  SharedPathsOptions,
} from './options.js';
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
  key: true,
  distinct: true,
  sharedPaths: true,
  probes: true,
};
const SHARED_KEYS: KeyList<SharedPathsOptions> = { networks: true, findTime: true };
const PROBE_KEYS: KeyList<ProbeOptions> = { signatures: true, weight: true };
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

function resolveIncrement(path: string, value: unknown): ResolvedIncrement | null {
  if (value === undefined || value === false) return null;
  const input = value === true ? {} : checkKeys(path, value, INCREMENT_KEYS);
  const factor = input.factor ?? DEFAULTS.incrementFactor;
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
      input.maxTime === undefined
        ? DEFAULTS.incrementMaxTimeMs
        : toBanTimeMs(`${path}.maxTime`, input.maxTime),
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

  // 'any' says in words that every status counts: the jail matches by its paths or user agents.
  const statusesAny = input.statuses === 'any';
  const statuses = statusesAny
    ? null
    : statusSet(at('statuses'), input.statuses, [400, 599], 'failure statuses (or "any")');
  const paths = compilePaths(at('paths'), input.paths);
  const userAgent = compileUserAgents(at('userAgents'), input.userAgents);
  if (statuses === null && paths.isEmpty && userAgent === undefined) {
    throw new JailkeeperConfigError(
      'JK_ERR_JAIL_MATCHES_NOTHING',
      path,
      `${path} must name statuses (e.g. [401, 403]), paths or userAgents; a jail with none of them would count nothing.`,
    );
  }
  const maxRetry = positiveInteger(at('maxRetry'), input.maxRetry, DEFAULTS.maxRetry);
  const jailMethods = methodSet(at('methods'), input.methods);
  const scope = input.scope ?? 'app';
  if (scope !== 'app' && scope !== 'jail') invalid(at('scope'), '"app" or "jail"', scope);

  let pardon: ResolvedPardon | null = null;
  if (input.pardon !== undefined && input.pardon !== false) {
    const p = checkKeys(at('pardon'), input.pardon, PARDON_KEYS);
    const pathP = `${at('pardon')}`;
    const pardonStatuses =
      statusSet(`${pathP}.statuses`, p.statuses, [100, 599], 'success statuses') ??
      new Set(DEFAULTS.pardonStatuses);
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
    const pardonMax = p.maxRetry ?? maxRetry * DEFAULTS.pardonMaxRetryFactor;
    if (pardonMax !== Number.POSITIVE_INFINITY) positiveInteger(`${pathP}.maxRetry`, pardonMax, 0);
    if (typeof pardonMax !== 'number')
      invalid(`${pathP}.maxRetry`, 'a positive integer or Infinity', pardonMax);
    if (pardonMax < maxRetry)
      invalid(`${pathP}.maxRetry`, `at least the jail's maxRetry (${maxRetry})`, pardonMax);
    pardon = Object.freeze({
      statuses: pardonStatuses,
      paths: pardonPaths,
      methods: pardonMethods(pathP, p.methods, jailMethods),
      forMs: p.for === undefined ? DEFAULTS.pardonForMs : toDurationMs(`${pathP}.for`, p.for),
      maxRetry: pardonMax as number,
    });
  }

  return Object.freeze({
    name,
    statuses,
    methods: jailMethods,
    paths,
    exempt: compilePaths(at('exempt'), input.exempt),
    userAgent,
    maxRetry,
    findTimeMs:
      input.findTime === undefined ? DEFAULTS.findTimeMs : toDurationMs(at('findTime'), input.findTime),
    banTimeMs: input.banTime === undefined ? DEFAULTS.banTimeMs : toBanTimeMs(at('banTime'), input.banTime),
    scope: scope as 'app' | 'jail',
    increment: resolveIncrement(at('banTimeIncrement'), input.banTimeIncrement),
    pardon,
    dryRun: bool(at('dryRun'), input.dryRun, globalDryRun),
    key: jailKey(at('key'), input.key),
    feedsRecidive,
    countsEveryStatusUnsaid: statuses === null && !statusesAny && !paths.isEmpty && userAgent === undefined,
    distinct: resolveDistinct(at('distinct'), input.distinct),
    sharedPaths: resolveShared(at('sharedPaths'), input.sharedPaths, statuses),
    probes: resolveProbes(at('probes'), input.probes, statuses),
  });
}

function resolveDistinct(path: string, value: unknown): ResolvedJail['distinct'] {
  if (value === undefined || value === false) return null;
  if (value !== 'path' && value !== 'route') invalid(path, '"path", "route" or false', value);
  return value;
}

/** Shared paths and probes judge 404s (and 410s): a jail that counts neither has nothing for them. */
function requireNotFound(path: string, statuses: ReadonlySet<number> | null): void {
  if (statuses !== null && !statuses.has(404) && !statuses.has(410)) {
    invalid(path, 'off in a jail whose statuses count no 404 or 410 (it judges only those)', true);
  }
}

function resolveShared(
  path: string,
  value: unknown,
  statuses: ReadonlySet<number> | null,
): ResolvedSharedPaths | null {
  if (value === undefined || value === false) return null;
  const input = value === true ? {} : checkKeys(path, value, SHARED_KEYS);
  requireNotFound(path, statuses);
  const networks = positiveInteger(`${path}.networks`, input.networks, DEFAULTS.sharedPathNetworks);
  // Fewer than three networks would let one attacker with two connections spare its own probes.
  if (networks < 3) invalid(`${path}.networks`, 'an integer of 3 or more', networks);
  return Object.freeze({
    networks,
    findTimeMs:
      input.findTime === undefined
        ? DEFAULTS.sharedPathFindTimeMs
        : toDurationMs(`${path}.findTime`, input.findTime),
  });
}

function resolveProbes(
  path: string,
  value: unknown,
  statuses: ReadonlySet<number> | null,
): ResolvedProbes | null {
  if (value === undefined || value === false) return null;
  const input = value === true ? {} : checkKeys(path, value, PROBE_KEYS);
  requireNotFound(path, statuses);
  const signatures = (input.signatures ?? PROBE_PATHS) as readonly string[];
  const matches = compileProbes(`${path}.signatures`, signatures);
  const weight = positiveInteger(`${path}.weight`, input.weight, DEFAULTS.probeWeight);
  if (weight < 2) invalid(`${path}.weight`, 'an integer of 2 or more (1 is an ordinary failure)', weight);
  return Object.freeze({ matches, signatures: Object.freeze([...signatures]), weight });
}

function jailKey(path: string, value: unknown): ResolvedJail['key'] {
  if (value === undefined) return 'address';
  if (value !== 'address' && value !== 'account' && value !== 'account+address') {
    invalid(path, '"address", "account" or "account+address"', value);
  }
  return value;
}

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

/**
 * The methods that earn a pardon. Named: methods the jail counts (HEAD where it counts GET), and
 * only those: OPTIONS or HEAD pardon only when named. Not named: the jail's methods that carry a
 * credential in a body (POST, PUT, PATCH), so that a login page, a HEAD or a CORS preflight on
 * the login path never pardons.
 */
function pardonMethods(path: string, value: unknown, jailMethods: ReadonlySet<string> | null): Set<string> {
  const named = methodSet(`${path}.methods`, value);
  if (named === null) {
    const methods = new Set(DEFAULTS.pardonMethods.filter((m) => jailMethods === null || jailMethods.has(m)));
    if (methods.size === 0) {
      invalid(
        `${path}.methods`,
        `the methods of a success, since the jail counts only ${[...(jailMethods ?? [])].join(', ')} and a pardon is earned by default only with ${DEFAULTS.pardonMethods.join(', ')} (e.g. ["GET"] for HTTP Basic logins)`,
        value,
      );
    }
    return methods;
  }
  if (jailMethods !== null) {
    for (const method of named) {
      if (!jailMethods.has(method === 'HEAD' ? 'GET' : method)) {
        invalid(`${path}.methods`, `methods the jail counts (${[...jailMethods].join(', ')})`, method);
      }
    }
  }
  return named;
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
  const top = checkKeys('', input, TOP_KEYS);
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
