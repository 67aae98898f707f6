/**
 * Every default of the engine, in one table. Durations are milliseconds; fail2ban's own defaults
 * where it has one (findtime 10m, bantime 10m, maxretry 5, recidive 5 bans in 1d for 1w).
 */
export const DEFAULTS = Object.freeze({
  /** Failures within findTime that ban. */
  maxRetry: 5,
  findTimeMs: 10 * 60_000,
  banTimeMs: 10 * 60_000,
  /** How long a pardon lasts; each success renews it. */
  pardonForMs: 30 * 86_400_000,
  /** The pardoned threshold is this many times the jail's maxRetry. */
  pardonMaxRetryFactor: 4,
  /** The statuses that prove a success, for a pardon. */
  pardonStatuses: Object.freeze([200]) as readonly number[],
  /** The methods that earn a pardon unless it names its own: those that carry a credential in a body. */
  pardonMethods: Object.freeze(['POST', 'PUT', 'PATCH']) as readonly string[],
  /** The longest an escalated ban may last. */
  incrementMaxTimeMs: 7 * 86_400_000,
  incrementFactor: 1,
  recidive: Object.freeze({ maxRetry: 5, findTimeMs: 86_400_000, banTimeMs: 7 * 86_400_000 }),
  /** How long ban history is kept after a client's last ban ends (fail2ban's dbpurgeage). */
  historyTimeMs: 86_400_000,
  /** The most failure counters the memory store keeps. */
  maxTrackedClients: 100_000,
  ipv6Subnet: 64,
  sweepIntervalMs: 1000,
  /** The jail of a manual ban that names none. */
  manualJail: 'manual',
  /** A manual ban without a duration, in the `manual` jail. */
  manualBanMs: 86_400_000,
  /** How long an attempt on a targeted route holds its slot if it is never settled (a crash). */
  attemptHoldMs: 60_000,
  /** How long an attempt beyond the budget waits for a slot before it is refused with 429. */
  attemptWaitMs: 5000,
  /** How soon after a change the memory store writes its snapshot. */
  persistDelayMs: 1000,
  /** Different networks (/24, /48) failing on one path that make it the site's broken link. */
  sharedPathNetworks: 8,
  /** The window those failures are seen in. */
  sharedPathFindTimeMs: 60 * 60_000,
  /** How many ordinary failures a failure on a probe path weighs. */
  probeWeight: 5,
  /** The most clients the failure judge remembers failing paths of, per jail (the oldest go first). */
  judgeClients: 20_000,
  /** The most failing paths the judge remembers of one client in one jail. */
  judgePathsPerClient: 64,
  /** The most 404 paths a jail's shared-path tracker watches (the least recent go first). */
  sharedPathsTracked: 10_000,
});

/** Jail names that jailkeeper uses itself. */
export const RESERVED_JAILS = Object.freeze({
  recidive: 'recidive',
  manual: DEFAULTS.manualJail,
  storeDown: 'store-unavailable',
});

/** A jail name: letters, digits, `.`, `_` and `-`, at most 64, starting with a letter or digit. */
export const JAIL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** True when `name` is a valid jail name (the rule the CLI and the config share). */
export function isJailName(name: unknown): name is string {
  return typeof name === 'string' && JAIL_NAME.test(name);
}
