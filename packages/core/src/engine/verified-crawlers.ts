import { promises as dns } from 'node:dns';
import type { Clock } from '../clock.js';
import type { Duration } from '../config/duration.js';
import { toDurationMs } from '../config/duration.js';
import { checkKeys, type KeyList } from '../config/validate.js';
import { invalid, type Warner } from '../errors.js';
import { canonicalIp } from '../identity/ip.js';
import { evictOldest } from '../store/ban-history.js';

/**
 * DNS as crawler verification needs it. Inject one in tests: a test must never query real DNS.
 */
export interface CrawlerResolver {
  /** The host names of an address (PTR records); an empty array or a rejection when there are none. */
  reverse(ip: string): Promise<string[]>;
  /** The addresses of a host name (A and AAAA records). */
  lookup(hostname: string): Promise<string[]>;
}

/** A crawler that can be verified: how it names itself, and the domains its addresses resolve to. */
export interface CrawlerDefinition {
  /** A short name, for logs and status. */
  name: string;
  /** Matches the user agent of a client that claims to be this crawler. Without the `g` or `y` flag. */
  userAgent: RegExp;
  /** The reverse DNS name must end with one of these (e.g. `googlebot.com`). */
  domains: string[];
}

/** The crawlers jailkeeper knows, as their operators document their verification. */
export const KNOWN_CRAWLERS: Readonly<Record<'googlebot' | 'bingbot', CrawlerDefinition>> = Object.freeze({
  googlebot: Object.freeze({
    name: 'googlebot',
    userAgent:
      /\b(?:Googlebot|Google-InspectionTool|GoogleOther|Storebot-Google|AdsBot-Google|Mediapartners-Google)\b/i,
    domains: ['googlebot.com', 'google.com', 'googleusercontent.com'],
  }),
  bingbot: Object.freeze({
    name: 'bingbot',
    userAgent: /\b(?:bingbot|msnbot|adidxbot|BingPreview)\b/i,
    domains: ['search.msn.com'],
  }),
});

/**
 * Verified crawlers: a client whose user agent claims to be Googlebot or Bingbot is checked the
 * way Google and Microsoft document it (reverse DNS of the address, the name in their domain,
 * then a forward lookup of that name that gives the address back) before a covered jail counts
 * it. A real crawler is spared; an impostor is counted like anyone else. The check runs only for
 * a response a covered jail would count, after the response: never on the request path, and
 * never for a client that claims no crawler.
 */
export interface VerifiedCrawlersOptions {
  /** The jails that spare a verified crawler. @default every jail */
  jails?: string[];
  /** The crawlers to verify: `'googlebot'`, `'bingbot'`, or your own definitions. @default ['googlebot', 'bingbot'] */
  crawlers?: Array<'googlebot' | 'bingbot' | CrawlerDefinition>;
  /** How long a verdict (real or impostor) is kept per address. @default '1d' */
  cacheTime?: Duration;
  /** The longest wait for DNS. An address not verified in time is treated as an impostor (counted), as fail2ban's ignorecommand does; that verdict is kept one minute. @default '2s' */
  timeout?: Duration;
  /** The most verdicts kept; the oldest go first. @default 10000 */
  maxCached?: number;
  /** The DNS to use. @default node:dns (reverse, resolve4, resolve6) */
  resolver?: CrawlerResolver;
}

/** {@link VerifiedCrawlersOptions} after validation. */
export interface ResolvedVerifiedCrawlers {
  readonly jails: ReadonlySet<string> | null;
  readonly crawlers: readonly CrawlerDefinition[];
  readonly cacheTimeMs: number;
  readonly timeoutMs: number;
  readonly maxCached: number;
  readonly resolver: CrawlerResolver | undefined;
}

const KEYS: KeyList<VerifiedCrawlersOptions> = {
  jails: true,
  crawlers: true,
  cacheTime: true,
  timeout: true,
  maxCached: true,
  resolver: true,
};

/** Validates `verifiedCrawlers` once, at setup. `jailNames` are the configured jails. */
export function resolveVerifiedCrawlers(
  value: unknown,
  jailNames: readonly string[],
): ResolvedVerifiedCrawlers | null {
  const path = 'verifiedCrawlers';
  if (value === undefined || value === false) return null;
  const input: Record<string, unknown> = value === true ? {} : (value as Record<string, unknown>);
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    invalid(path, 'true or an object', value);
  checkKeys(path, input, KEYS);
  let jails: Set<string> | null = null;
  if (input.jails !== undefined) {
    if (!Array.isArray(input.jails) || input.jails.length === 0)
      invalid(`${path}.jails`, 'a non-empty array of jail names', input.jails);
    jails = new Set();
    input.jails.forEach((name: unknown, i) => {
      if (typeof name !== 'string' || !jailNames.includes(name))
        invalid(`${path}.jails[${i}]`, `the name of a configured jail (${jailNames.join(', ')})`, name);
      jails?.add(name);
    });
  }
  const list = input.crawlers ?? ['googlebot', 'bingbot'];
  if (!Array.isArray(list) || list.length === 0)
    invalid(`${path}.crawlers`, 'a non-empty array of "googlebot", "bingbot" or crawler definitions', list);
  const crawlers = list.map((entry: unknown, i): CrawlerDefinition => {
    const at = `${path}.crawlers[${i}]`;
    if (entry === 'googlebot' || entry === 'bingbot') return KNOWN_CRAWLERS[entry];
    const def = entry as Partial<CrawlerDefinition> | null;
    if (typeof def !== 'object' || def === null)
      invalid(at, '"googlebot", "bingbot" or { name, userAgent, domains }', entry);
    if (typeof def.name !== 'string' || def.name === '')
      invalid(`${at}.name`, 'a non-empty string', def.name);
    if (!(def.userAgent instanceof RegExp) || def.userAgent.global || def.userAgent.sticky)
      invalid(`${at}.userAgent`, 'a RegExp without the g or y flag', def.userAgent);
    if (
      !Array.isArray(def.domains) ||
      def.domains.length === 0 ||
      !def.domains.every((d) => typeof d === 'string' && /^[a-z0-9.-]+\.[a-z]{2,}$/i.test(d))
    )
      invalid(`${at}.domains`, 'a non-empty array of domain names such as "googlebot.com"', def.domains);
    return Object.freeze({
      name: def.name,
      userAgent: def.userAgent,
      domains: Object.freeze(def.domains.map((d) => d.toLowerCase())),
    }) as CrawlerDefinition;
  });
  const resolver = input.resolver as CrawlerResolver | undefined;
  if (
    resolver !== undefined &&
    (typeof resolver !== 'object' ||
      resolver === null ||
      typeof resolver.reverse !== 'function' ||
      typeof resolver.lookup !== 'function')
  ) {
    invalid(`${path}.resolver`, 'an object with reverse(ip) and lookup(hostname)', resolver);
  }
  const maxCached = input.maxCached ?? 10_000;
  if (typeof maxCached !== 'number' || !Number.isInteger(maxCached) || maxCached < 1)
    invalid(`${path}.maxCached`, 'a positive integer', maxCached);
  return Object.freeze({
    jails,
    crawlers: Object.freeze(crawlers),
    cacheTimeMs:
      input.cacheTime === undefined ? 24 * 3600_000 : toDurationMs(`${path}.cacheTime`, input.cacheTime),
    timeoutMs: input.timeout === undefined ? 2000 : toDurationMs(`${path}.timeout`, input.timeout),
    maxCached,
    resolver,
  });
}

/** The system's DNS, with its own timeout so that a slow server cannot hold lookups forever. */
function systemResolver(timeoutMs: number): CrawlerResolver {
  const resolver = new dns.Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 2)), tries: 2 });
  return {
    reverse: (ip) => resolver.reverse(ip),
    async lookup(hostname) {
      const [v4, v6] = await Promise.allSettled([resolver.resolve4(hostname), resolver.resolve6(hostname)]);
      return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    },
  };
}

/** What screen() needs from the keeper: its jails, and whether a jail would count this response. */
export interface ScreenedEvent {
  readonly client: string | { readonly ip: string };
  readonly userAgent?: string;
  readonly jails?: ReadonlySet<string>;
}

const ERROR_VERDICT_MS = 60_000;

/**
 * Verifies claimed crawlers and keeps the verdicts (bounded, per address and crawler; lookups of
 * one address in flight are shared). Never rejects: a DNS failure or timeout is "not verified".
 */
export class CrawlerVerifier {
  readonly #options: ResolvedVerifiedCrawlers;
  readonly #clock: Clock;
  readonly #warner: Warner | undefined;
  #resolver: CrawlerResolver | undefined;
  readonly #verdicts = new Map<string, { verified: boolean; untilMs: number }>();
  readonly #pending = new Map<string, Promise<boolean>>();

  constructor(options: ResolvedVerifiedCrawlers, clock: Clock, warner?: Warner) {
    this.#options = options;
    this.#clock = clock;
    this.#warner = warner;
    this.#resolver = options.resolver;
  }

  /** Whether a verified crawler is spared in this jail. */
  covers(jail: string): boolean {
    return this.#options.jails === null || this.#options.jails.has(jail);
  }

  /** The crawler a user agent claims to be, if any. Cheap: one RegExp test per crawler. */
  claimed(userAgent: string | undefined): CrawlerDefinition | undefined {
    if (userAgent === undefined || userAgent === '') return undefined;
    for (const crawler of this.#options.crawlers) if (crawler.userAgent.test(userAgent)) return crawler;
    return undefined;
  }

  /** The cached verdict, without waiting: true, false, or undefined when not known (or expired). */
  peek(ip: string, crawler: CrawlerDefinition): boolean | undefined {
    const key = `${crawler.name} ${ip}`;
    const verdict = this.#verdicts.get(key);
    if (verdict === undefined) return undefined;
    if (verdict.untilMs <= this.#clock.now()) {
      this.#verdicts.delete(key);
      return undefined;
    }
    return verdict.verified;
  }

  /** Whether the address belongs to the crawler: reverse DNS, domain, forward confirmation. */
  verify(ip: string, crawler: CrawlerDefinition): Promise<boolean> {
    const cached = this.peek(ip, crawler);
    if (cached !== undefined) return Promise.resolve(cached);
    const key = `${crawler.name} ${ip}`;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const run = this.#lookup(ip, crawler).then(
      (verified) => this.#keep(key, verified, this.#options.cacheTimeMs),
      (error: unknown) => {
        this.#warner?.warn(
          'JK_WRN_CRAWLER_DNS',
          `Verifying a client that claims to be ${crawler.name} failed (${(error as Error)?.message ?? error}); it was counted like any client.`,
        );
        return this.#keep(key, false, Math.min(ERROR_VERDICT_MS, this.#options.cacheTimeMs));
      },
    );
    this.#pending.set(key, run);
    void run.finally(() => this.#pending.delete(key));
    return run;
  }

  /**
   * For observe(): undefined when nothing needs verifying (no claimed crawler, no covered jail
   * would count the response, or the address is a known impostor); else the observe() result,
   * once the client is verified: a real crawler's response goes on without the covered jails.
   */
  screen<R>(
    event: ScreenedEvent,
    jails: readonly { readonly name: string }[],
    wouldCount: (jail: { readonly name: string }) => boolean,
    observe: (only: ReadonlySet<string> | undefined) => Promise<R>,
  ): Promise<R> | undefined {
    const crawler = this.claimed(event.userAgent);
    if (crawler === undefined) return undefined;
    let covered = false;
    for (const jail of jails) {
      if (event.jails !== undefined && !event.jails.has(jail.name)) continue;
      if (this.covers(jail.name) && wouldCount(jail)) {
        covered = true;
        break;
      }
    }
    if (!covered) return undefined;
    const ip = canonicalIp(typeof event.client === 'string' ? event.client : event.client.ip);
    if (ip === undefined) return undefined;
    const spare = (verified: boolean): Promise<R> => {
      if (!verified) return observe(event.jails);
      const only = new Set<string>();
      for (const jail of jails) {
        if ((event.jails === undefined || event.jails.has(jail.name)) && !this.covers(jail.name))
          only.add(jail.name);
      }
      return observe(only);
    };
    const known = this.peek(ip, crawler);
    if (known === false) return undefined;
    if (known === true) return spare(true);
    return this.verify(ip, crawler).then(spare);
  }

  async #lookup(ip: string, crawler: CrawlerDefinition): Promise<boolean> {
    this.#resolver ??= systemResolver(this.#options.timeoutMs);
    const resolver = this.#resolver;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no DNS answer within ${this.#options.timeoutMs} ms`)),
        this.#options.timeoutMs,
      );
    });
    const check = async (): Promise<boolean> => {
      let names: string[];
      try {
        names = await resolver.reverse(ip);
      } catch (error) {
        // No PTR record is an answer (an impostor), not a failure.
        if (isNoData(error)) return false;
        throw error;
      }
      for (const raw of names) {
        const name = raw.toLowerCase().replace(/\.$/, '');
        if (!crawler.domains.some((d) => name === d || name.endsWith(`.${d}`))) continue;
        let addresses: string[];
        try {
          addresses = await resolver.lookup(name);
        } catch (error) {
          if (isNoData(error)) continue;
          throw error;
        }
        if (addresses.some((a) => canonicalIp(a) === ip)) return true;
      }
      return false;
    };
    try {
      return await Promise.race([check(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #keep(key: string, verified: boolean, forMs: number): boolean {
    this.#verdicts.delete(key);
    this.#verdicts.set(key, { verified, untilMs: this.#clock.now() + forMs });
    if (this.#verdicts.size > this.#options.maxCached) evictOldest(this.#verdicts, this.#options.maxCached);
    return verified;
  }
}

function isNoData(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA' || code === 'NXDOMAIN';
}
