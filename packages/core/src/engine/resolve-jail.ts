import { DEFAULTS } from '../config/defaults.js';
import { toBanTimeMs, toDurationMs } from '../config/duration.js';
import { bool, checkKeys, type KeyList, methodSet, positiveInteger, statusSet } from '../config/validate.js';
import { invalid, JailkeeperConfigError } from '../errors.js';
import { compilePaths, compileUserAgents } from '../paths/path-pattern.js';
import { compileProbes } from '../paths/probe-match.js';
import { PROBE_PATHS } from '../signatures/probe-paths.js';
import type {
  BanTimeIncrementOptions,
  JailOptions,
  KeyFunction,
  OwnersOptions,
  PardonOptions,
  ProbeOptions,
  ResolvedIncrement,
  ResolvedJail,
  ResolvedOwners,
  ResolvedPardon,
  ResolvedProbes,
  ResolvedSharedPaths,
  SharedPathsOptions,
} from './options.js';

// A jail's options, validated and compiled once: every message names the option's path.
export const JAIL_KEYS: KeyList<JailOptions> = {
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
  headers: true,
  owners: true,
  distinct: true,
  sharedPaths: true,
  probes: true,
};
const SHARED_KEYS: KeyList<SharedPathsOptions> = { networks: true, findTime: true };
const PROBE_KEYS: KeyList<ProbeOptions> = { signatures: true, weight: true };
const OWNERS_KEYS: KeyList<OwnersOptions> = { statuses: true, paths: true, methods: true, for: true };
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

export function resolveJail(
  name: string,
  raw: unknown,
  defaults: Record<string, unknown>,
  globalDryRun: boolean,
  feedsRecidive: boolean,
): ResolvedJail | null {
  const path = `jails.${name}`;
  if (raw === undefined || raw === null) {
    // What a misspelt preset or variable gives in JavaScript; `enabled: false` turns a jail off.
    invalid(
      path,
      "a jail's options, such as presets.login or { statuses: [401], paths: ['/login'] } (to turn a jail off, say enabled: false)",
      raw,
    );
  }
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

  const keyFn = typeof input.key === 'function' ? (input.key as KeyFunction) : null;
  const key = keyFn === null ? jailKey(at('key'), input.key) : 'function';
  const headers = resolveHeaders(at('headers'), input.headers, key);
  let owners: ResolvedOwners | null = null;
  if (input.owners !== undefined && input.owners !== false && key !== 'account') {
    invalid(
      at('owners'),
      `off in a jail keyed by "${key}" (only a jail keyed by "account" locks an account for everyone)`,
      input.owners,
    );
  }
  if (key === 'account' && input.owners !== false) {
    const o = input.owners === undefined ? {} : checkKeys(at('owners'), input.owners, OWNERS_KEYS);
    const ownerStatuses =
      statusSet(`${at('owners')}.statuses`, o.statuses, [100, 599], 'login statuses') ??
      new Set(DEFAULTS.pardonStatuses);
    const counted = statuses ?? new Set<number>();
    const overlap = [...ownerStatuses].filter((s) => counted.has(s));
    if (overlap.length > 0) {
      invalid(`${at('owners')}.statuses`, 'statuses the jail does not count as failures', overlap.join(', '));
    }
    owners = Object.freeze({
      statuses: ownerStatuses,
      paths: o.paths === undefined ? paths : compilePaths(`${at('owners')}.paths`, o.paths),
      methods: pardonMethods(at('owners'), o.methods, jailMethods),
      forMs: o.for === undefined ? DEFAULTS.pardonForMs : toDurationMs(`${at('owners')}.for`, o.for),
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
    key,
    keyFn,
    headers,
    owners,
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

function jailKey(path: string, value: unknown): Exclude<ResolvedJail['key'], 'function'> {
  if (value === undefined) return 'address';
  if (value !== 'address' && value !== 'account' && value !== 'account+address') {
    invalid(
      path,
      '"address", "account", "account+address" or a function (facts) => string | undefined',
      value,
    );
  }
  return value;
}

/** `headers: 'ratelimit'`; refused where the remaining count would be a stranger's to read. */
function resolveHeaders(path: string, value: unknown, key: ResolvedJail['key']): boolean {
  if (value === undefined || value === false) return false;
  if (value !== 'ratelimit') invalid(path, '"ratelimit" or false', value);
  if (key === 'account') {
    invalid(
      path,
      'off in a jail keyed by "account" (anyone who names an account would read how many failures it had; key it by "account+address")',
      value,
    );
  }
  return true;
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
