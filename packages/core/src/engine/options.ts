import type { Clock } from '../clock.js';
import type { BanDuration, Duration } from '../config/duration.js';
import type { Logger } from '../errors.js';
import type { ClientIpOptions, ResolvedClientIpOptions } from '../identity/client-ip.js';
import type { Cidr } from '../identity/ip.js';
import type { PathMatcher, PathPattern } from '../paths/path-pattern.js';
import type { Store } from '../store/store.js';
import type { ResolvedVerifiedCrawlers, VerifiedCrawlersOptions } from './verified-crawlers.js';

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
 * matches gets `maxRetry` in this jail for `for`, instead of immunity. A success counts only on a
 * route the router chose (never a request no route matched) that the jail does not exempt.
 */
export interface PardonOptions {
  /** Statuses that prove a success. @default [200] */
  statuses?: number[];
  /** Paths (route patterns) of the success, e.g. `['/login']`. @default the jail's `paths` */
  paths?: PathPattern[];
  /**
   * Methods of the success: methods the jail counts. HEAD and OPTIONS pardon only when named here.
   * @default the jail's methods among POST, PUT and PATCH (those that carry a credential in a body)
   */
  methods?: string[];
  /** How long the pardon lasts; each success renews it. @default '30d' */
  for?: Duration;
  /** The threshold while pardoned. `Infinity` is the article's full whitelist: unsafe, see the docs. @default 4 × the jail's maxRetry */
  maxRetry?: number;
}

/**
 * The owners of an account, in a jail keyed by `'account'`: an address (its IPv6 /64) that logged
 * in to the account keeps a budget of its own there for `for`, and is never refused because of
 * failures from elsewhere. Strangers' failures lock the account; the owner's known addresses are
 * judged as the pair account+address. See docs/accounts.md.
 */
export interface OwnersOptions {
  /** Statuses that prove a login. @default [200] */
  statuses?: number[];
  /** Paths (route patterns) of the login. @default the jail's `paths` */
  paths?: PathPattern[];
  /** Methods of the login. @default the jail's methods among POST, PUT and PATCH */
  methods?: string[];
  /** How long an address stays an owner after its last login. @default '30d' */
  for?: Duration;
}

/**
 * The site's own broken links: a 404 (or 410) path no route took, on which at least `networks`
 * different networks (IPv4 /16, IPv6 /29: what one holder of address space owns counts once)
 * failed within `findTime`, is a broken link or a missing asset of the site, not a probe, and stops
 * counting for everyone while it stays that shared. Reported once per path (JK_WRN_BROKEN_LINK,
 * the `brokenLink` event, `keeper.brokenLinks()`). Probe paths and an app route's own 404s never
 * become shared. See docs/detection.md and, for the bound, docs/security.md.
 */
export interface SharedPathsOptions {
  /** Different networks that must fail on a path within `findTime` (3 or more). @default 8 */
  networks?: number;
  /** The window those failures are seen in; a shared path stays shared while they keep coming. @default '1h' */
  findTime?: Duration;
}

/**
 * Probe signatures: a failure on a path that scanners ask for and visitors never do weighs more
 * than an ordinary one. Only a request that no route matched, answered 404 or 410, is a probe: a
 * path the app serves never is. See docs/detection.md.
 */
export interface ProbeOptions {
  /**
   * The signatures (see `PROBE_PATH_GROUPS` for the syntax: segments matched at any depth, ignoring
   * case; a trailing `*` lets the last segment go on). @default PROBE_PATHS
   */
  signatures?: string[];
  /**
   * How many ordinary failures a probe weighs: a probe bans when the client's failures in the window
   * reach ⌈maxRetry ÷ weight⌉. Every failure of a client that probed within findTime is judged at
   * the probe's weight, before the probe or after it, so order never decides. @default 5
   */
  weight?: number;
}

/**
 * What is known of a request before its handler runs, as a jail's key function sees it (see
 * {@link JailOptions.key}). Read-only: the function must not keep it.
 */
export interface KeyFacts {
  /** The client's address as jailkeeper resolved it (proxies honoured as configured), canonical. */
  readonly ip: string;
  /** The method the router runs (after a method override). */
  readonly method: string;
  /** The request path, without its query, as received. */
  readonly path: string;
  /**
   * The route pattern the router chose (`'/api/:tenant/login'`); null while none is known (before
   * routing, or no route matched). Route parameters are not parsed for the key: read them from
   * `path`, or name the account with `account()` once the handler knows it.
   */
  readonly route: string | null;
  /** The request's headers, as Node parsed them (lower-case names). Attacker-written. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * A jail's own key: what it counts and bans a request under, from what is known before the
 * handler runs. Return a string (an API key's id, a tenant, a device id); `undefined` to leave the
 * request uncounted in this jail. Called at most once per request and jail, synchronously.
 * Anything else (a number, a promise, a throw) is warned about once (JK_WRN_KEY_FUNCTION) and the
 * request is not counted in this jail. A key is only as good as the input it is read from: a key
 * read from a header the client writes is chosen by the client. See docs/accounts.md.
 * @example (facts) => facts.headers['x-api-key-id'] as string | undefined
 */
export type KeyFunction = (facts: KeyFacts) => string | undefined;

/** One jail: which responses are failures, and the thresholds. */
export interface JailOptions {
  /**
   * Response statuses counted as failures (400 to 599), or `'any'`: every response on the jail's
   * `paths` (a honeypot) or from its `userAgents` counts. A jail with `paths` and no `statuses`
   * counts every status too, but warns (JK_WRN_COUNTS_EVERY_STATUS): it would count successes.
   * @default any, when `paths` or `userAgents` are given
   */
  statuses?: number[] | 'any';
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
  banTime?: BanDuration;
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
  /**
   * What the jail counts and bans: the client's address; the account the app names with
   * `account()` (credential stuffing spreads one account's guesses over many addresses); or the
   * pair, which an attacker cannot use to lock a victim out from its own addresses. See
   * docs/accounts.md for the trade-off. Or a {@link KeyFunction}: the jail's own key, read from
   * what is known before the handler (a header, the path), judged before the handler runs; pair
   * it with an address jail, since a client chooses what it sends. @default 'address'
   */
  key?: 'address' | 'account' | 'account+address' | KeyFunction;
  /**
   * `'ratelimit'`: responses on the routes this jail targets carry the `RateLimit-Policy` and
   * `RateLimit` header fields (IETF draft-ietf-httpapi-ratelimit-headers-10) with this client's
   * remaining attempts in the window, and a refusal by this jail the ban's remaining time. Not
   * allowed in a jail keyed by `'account'` (it would tell anyone who names an account how many
   * failures it had). See docs/rate-limit-headers.md. @default false
   */
  headers?: 'ratelimit' | false;
  /**
   * In a jail keyed by `'account'`: the addresses that logged in to an account keep their own
   * budget there and are never locked out by strangers (see {@link OwnersOptions}); `false` locks
   * the account for everyone. @default on, for jails keyed by 'account'
   */
  owners?: OwnersOptions | false;
  /**
   * Count each failing path (`'path'`) or route (`'route'`: the pattern the router matched, the path
   * when none did) once per client within `findTime`: a browser asking again for a missing asset
   * counts once, a scanner walking fifty paths counts fifty. A 404 or 410 on a route the app serves
   * counts once per path and query in either mode (the event's `query`), so guessing `?token=` or a
   * `:param` costs as much as guessing paths. @default off
   */
  distinct?: 'path' | 'route' | false;
  /** Spare the site's own broken links (see {@link SharedPathsOptions}); `true` for the defaults. @default off */
  sharedPaths?: SharedPathsOptions | boolean;
  /** Weigh failures on probe paths (see {@link ProbeOptions}); `true` for the defaults. @default off */
  probes?: ProbeOptions | boolean;
}

/** The recidive jail: a client banned `maxRetry` times within `findTime` is banned everywhere for `banTime`. */
export interface RecidiveOptions {
  /** @default 5 */
  maxRetry?: number;
  /** @default '1d' */
  findTime?: Duration;
  /** @default '1w' */
  banTime?: BanDuration;
  /** The jails whose bans count. @default all */
  jails?: string[];
  /** @default the global dryRun */
  dryRun?: boolean;
}

/**
 * Attempts on the routes a jail targets (one with `paths` or `methods`): each takes a slot before
 * its handler runs, so failures plus attempts in flight never pass `maxRetry`. See docs/security.md.
 */
export interface AttemptOptions {
  /** How long a slot is held if its attempt is never settled (a crashed instance). @default '1m' */
  hold?: Duration;
  /** How long an attempt beyond the budget waits for a slot; then it is refused with 429. @default '5s' */
  wait?: Duration;
}

/**
 * Range bans for IPv6 rotation: when `threshold` clients (/64s, or the `ipv6Subnet` prefix) inside
 * one `/prefix` network are banned in a jail within its `findTime`, the whole network is banned in
 * that jail as one entry (reported and exported as one network). The trade-off: one site, or one
 * mobile carrier's pool, may share a /48; see docs/security.md.
 */
export interface Ipv6RangeBanOptions {
  /** The network banned as one entry, as a prefix length (shorter than `ipv6Subnet`). @default 48 */
  prefix?: number;
  /** Banned clients inside one network, within the jail's findTime, that ban the network. @default 8 */
  threshold?: number;
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
  /**
   * Turns the name an app passes to `account()` into the account it means, when the app resolves
   * names more loosely than jailkeeper's own normalisation (NFKC, trimmed, lower case, invisible
   * characters dropped): user name or e-mail, dots and `+tags`, accent-insensitive collation. Each
   * spelling that stays distinct is another budget. Better still, pass the app's own user id to
   * `account()` once it has looked the user up. See docs/accounts.md. @default none
   */
  normalizeAccount?: (name: string) => string | undefined;
  /** A pino-compatible logger: one line per ban and unban, warnings once. */
  logger?: Logger;
  /** The time source, for tests. @default Date.now */
  clock?: Clock;
  /** How often expired bans are swept and announced. @default '1s' */
  sweepInterval?: Duration;
  /** When a client is banned, close its open keep-alive and WebSocket connections on this instance. @default true */
  closeConnectionsOnBan?: boolean;
  /** Attempts on targeted routes: how long a slot is held, how long an extra attempt waits. */
  attempts?: AttemptOptions;
  /**
   * Spare verified crawlers: a client claiming to be Googlebot or Bingbot is checked by DNS
   * (reverse, then forward) before it is counted; `true` for every jail. @default off
   */
  verifiedCrawlers?: VerifiedCrawlersOptions | boolean;
  /** Ban a whole IPv6 network when many of its clients are banned; `true` for the defaults. @default off */
  ipv6RangeBan?: Ipv6RangeBanOptions | boolean;
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
  /** `'function'`: keyed by {@link ResolvedJail.keyFn}. */
  readonly key: 'address' | 'account' | 'account+address' | 'function';
  /** The jail's key function (`key` given as a function); null otherwise. */
  readonly keyFn: KeyFunction | null;
  /** True when responses show the RateLimit header fields for this jail (`headers: 'ratelimit'`). */
  readonly headers: boolean;
  /** The owners of an account (jails keyed by 'account'); null: none are known. */
  readonly owners: ResolvedOwners | null;
  /** True for a jail whose bans are counted by the recidive jail. */
  readonly feedsRecidive: boolean;
  /** True when the jail counts every status on its paths without saying `statuses: 'any'` (a warning). */
  readonly countsEveryStatusUnsaid: boolean;
  /** Count each failing path or route once per client within findTime; null: every failure counts. */
  readonly distinct: 'path' | 'route' | null;
  readonly sharedPaths: ResolvedSharedPaths | null;
  readonly probes: ResolvedProbes | null;
}

export interface ResolvedSharedPaths {
  readonly networks: number;
  readonly findTimeMs: number;
}

export interface ResolvedProbes {
  /** True when a path (as requested, without its query) matches a signature. */
  readonly matches: (path: string) => boolean;
  readonly signatures: readonly string[];
  readonly weight: number;
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
  readonly methods: ReadonlySet<string>;
  readonly forMs: number;
  readonly maxRetry: number;
}

/** What proves a login to an account, and how long its address stays an owner. */
export interface ResolvedOwners {
  readonly statuses: ReadonlySet<number>;
  readonly paths: PathMatcher;
  readonly methods: ReadonlySet<string>;
  readonly forMs: number;
}

export interface ResolvedRecidive {
  readonly maxRetry: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
  readonly dryRun: boolean;
}

/** The options after validation (`keeper.options`): frozen, durations in ms, paths compiled. */
export interface ResolvedOptions {
  readonly jails: readonly ResolvedJail[];
  readonly jailsByName: ReadonlyMap<string, ResolvedJail>;
  readonly ignoreIp: readonly Cidr[];
  readonly recidive: ResolvedRecidive | null;
  readonly historyTimeMs: number;
  readonly store: Store | undefined;
  readonly persist: string | undefined;
  readonly maxTrackedClients: number;
  readonly normalizeAccount: ((name: string) => string | undefined) | undefined;
  readonly ipv6Subnet: number;
  readonly clientIp: ResolvedClientIpOptions;
  readonly logger: Logger | undefined;
  readonly clock: Clock | undefined;
  readonly sweepIntervalMs: number;
  readonly closeConnectionsOnBan: boolean;
  readonly attempts: { readonly holdMs: number; readonly waitMs: number };
  readonly verifiedCrawlers: ResolvedVerifiedCrawlers | null;
  readonly ipv6RangeBan: { readonly prefix: number; readonly threshold: number } | null;
}
