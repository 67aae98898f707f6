import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { DEFAULTS } from '../config/defaults.js';
import { formatDuration } from '../config/duration.js';
import type { ClientIdentity } from '../identity/identity.js';
import { embeddedIPv4, maskWords, parseIp } from '../identity/ip.js';
import { evictOldest } from '../store/ban-history.js';
import type { FailureRule } from '../store/store.js';
import type { Announcer, BrokenLink, ResponseEvent } from './events.js';
import type { ResolvedJail, ResolvedSharedPaths } from './options.js';

/**
 * What the judge makes of one failure in one jail: count it, count it as a probe (the jail's probe
 * rule), count it at the probe's weight because the client probed within findTime (`weighed`), or
 * leave it uncounted because the client already failed there (`repeated`) or because the path is
 * the site's own broken link (`shared`).
 */
export type Judgement = 'count' | 'probe' | 'weighed' | 'repeated' | 'shared';

/** Paths longer than this are never tracked as shared: an attacker's long paths cost no memory. */
const MAX_SHARED_PATH = 512;
/** Resources (path and query) longer than this are remembered by a digest: long guesses cost no memory. */
const MAX_RESOURCE = 256;

/**
 * The network a client is in for shared paths: an IPv4 /16 (an IPv6 address carrying an IPv4
 * client is that client), an IPv6 /29. A /29 is the largest allocation a single ISP or hosting
 * customer commonly holds (RIPE's default LIR allocation; a customer gets a /48 or a /56 of it),
 * and a /16 is more IPv4 space than a single small holder rents: whatever one holder of address
 * space owns counts once, however many of its /48s or /24s it spreads over.
 */
export function networkOf(ip: string): string {
  const parsed = parseIp(ip);
  if (parsed === undefined) return ip;
  if (parsed.family === 4) return `${parsed.value >>> 16}/16`;
  const v4 = embeddedIPv4(parsed.words);
  if (v4 !== undefined) return `${v4 >>> 16}/16`;
  const w = maskWords(parsed.words, 29);
  return `${w[0]}:${w[1]}/29`;
}

/**
 * What a failure is on, for `distinct`: a 404 or 410 on a route the app serves (or with no router
 * information, as in a replayed log) is a resource, so its query counts (a guesser varying
 * `?token=` is on a new resource each time); a request no route took is a missing file, whose
 * query nothing reads (a cache-buster); other statuses count by route under `distinct: 'route'`.
 */
function resourceOf(jail: ResolvedJail, event: ResponseEvent, notFound: boolean): string {
  const where =
    notFound && event.route !== null && event.query !== undefined && event.query !== ''
      ? `${event.path}?${event.query}`
      : !notFound && jail.distinct === 'route' && typeof event.route === 'string'
        ? event.route
        : event.path;
  return where.length <= MAX_RESOURCE
    ? where
    : `${where.slice(0, 64)}#${createHash('sha256').update(where).digest('base64')}`;
}

/** The rule a probe is counted under: the jail's, with the threshold divided by the weight. */
export function probeRule(rule: FailureRule, weight: number): FailureRule {
  const maxRetry = Math.ceil(rule.maxRetry / weight);
  return Object.freeze({
    ...rule,
    maxRetry,
    pardonMaxRetry: Number.isFinite(rule.pardonMaxRetry)
      ? Math.ceil(rule.pardonMaxRetry / weight)
      : rule.pardonMaxRetry,
    reason: `probe paths (each weighs ${weight} failures): ${maxRetry} within ${formatDuration(rule.findTimeMs)}`,
  });
}

interface SharedEntry {
  /** The most recent failure time of each network, oldest first; at most `networks` of them. */
  readonly seen: Map<string, number>;
  sinceMs: number | null;
  lastMs: number;
}

/** One jail's 404 paths and the networks that failed on them. */
class SharedPaths {
  readonly #jail: string;
  readonly #rule: ResolvedSharedPaths;
  readonly #paths = new Map<string, SharedEntry>();
  readonly #announce: (link: BrokenLink) => void;

  constructor(jail: string, rule: ResolvedSharedPaths, announce: (link: BrokenLink) => void) {
    this.#jail = jail;
    this.#rule = rule;
    this.#announce = announce;
  }

  /** Notes a failure of `network` on `path`; true when the path is shared now. */
  seen(path: string, network: string, now: number): boolean {
    if (path.length > MAX_SHARED_PATH) return false;
    let entry = this.#paths.get(path);
    if (entry === undefined) {
      if (this.#paths.size >= DEFAULTS.sharedPathsTracked)
        evictOldest(this.#paths, DEFAULTS.sharedPathsTracked);
      entry = { seen: new Map(), sinceMs: null, lastMs: now };
    } else {
      this.#paths.delete(path);
    }
    this.#paths.set(path, entry);
    entry.lastMs = now;
    entry.seen.delete(network);
    entry.seen.set(network, now);
    if (entry.seen.size > this.#rule.networks) entry.seen.delete(entry.seen.keys().next().value as string);
    const shared = this.#live(entry, now) >= this.#rule.networks;
    if (shared && entry.sinceMs === null) {
      entry.sinceMs = now;
      this.#announce(this.#link(path, entry, now));
    } else if (!shared) {
      entry.sinceMs = null;
    }
    return shared;
  }

  /** Networks whose last failure is inside the window. */
  #live(entry: SharedEntry, now: number): number {
    const since = now - this.#rule.findTimeMs;
    let live = 0;
    for (const t of entry.seen.values()) if (t > since) live++;
    return live;
  }

  #link(path: string, entry: SharedEntry, now: number): BrokenLink {
    return {
      jail: this.#jail,
      path,
      networks: this.#live(entry, now),
      sinceMs: entry.sinceMs as number,
      lastMs: entry.lastMs,
    };
  }

  /** The paths shared now. */
  *links(now: number): IterableIterator<BrokenLink> {
    for (const [path, entry] of this.#paths) {
      if (entry.sinceMs !== null && this.#live(entry, now) >= this.#rule.networks) {
        yield this.#link(path, entry, now);
      }
    }
  }
}

/**
 * The failure judge: consulted only when a response fails in a jail that counts distinct paths,
 * spares shared paths or weighs probes (never on a clean request). It decides whether the failure
 * is counted, counted as a probe, or left out, from what it remembers in memory: each client's
 * failing paths within findTime, and the networks failing on each 404 path. Both are bounded (the
 * least recent go first); forgetting only ever makes a failure count again.
 */
export class FailureJudge {
  readonly #clock: Clock;
  readonly #announcer: Announcer;
  /** Per jail: client key → its failing paths (or routes) → when first counted, oldest first. */
  readonly #distinct = new Map<string, Map<string, Map<string, number>>>();
  readonly #shared = new Map<string, SharedPaths>();
  /** Per jail with probes: client key → its last probe, least recent first. */
  readonly #probed = new Map<string, Map<string, number>>();

  constructor(jails: readonly ResolvedJail[], clock: Clock, announcer: Announcer) {
    this.#clock = clock;
    this.#announcer = announcer;
    for (const jail of jails) {
      if (jail.distinct !== null) this.#distinct.set(jail.name, new Map());
      if (jail.probes !== null) this.#probed.set(jail.name, new Map());
      if (jail.sharedPaths !== null) {
        this.#shared.set(
          jail.name,
          new SharedPaths(jail.name, jail.sharedPaths, (link) => this.#brokenLink(link, jail)),
        );
      }
    }
  }

  /** True for a jail the judge has a say in. */
  static judges(jail: ResolvedJail): boolean {
    return jail.distinct !== null || jail.sharedPaths !== null || jail.probes !== null;
  }

  /**
   * Judges one failure of `id` (keyed as the jail counts) in `jail`. A client that probed within
   * findTime has every failure judged at the probe's weight, before or after the probe alike: the
   * same failures in any order give the same verdict.
   */
  judge(jail: ResolvedJail, id: ClientIdentity, event: ResponseEvent): Judgement {
    const now = this.#clock.now();
    const notFound = event.status === 404 || event.status === 410;
    // A probe is a request no route took: a path the app serves is never one, whatever its name.
    const probe =
      jail.probes !== null && notFound && typeof event.route !== 'string' && jail.probes.matches(event.path);
    // An app route's own 404 (the router chose a handler) is the app's answer, never a broken link.
    if (!probe && notFound && typeof event.route !== 'string') {
      const shared = this.#shared.get(jail.name);
      if (shared?.seen(event.path, networkOf(id.ip), now) === true) return 'shared';
    }
    const probed = this.#probed.get(jail.name);
    const weighed = probed !== undefined && this.#weighed(probed, jail, id.key, probe, now);
    const clients = this.#distinct.get(jail.name);
    if (
      clients !== undefined &&
      this.#repeated(clients, id.key, resourceOf(jail, event, notFound), now, jail)
    )
      return 'repeated';
    return probe ? 'probe' : weighed ? 'weighed' : 'count';
  }

  /** Remembers a probe; true when the client probed within findTime (this failure included). */
  #weighed(
    probed: Map<string, number>,
    jail: ResolvedJail,
    key: string,
    probe: boolean,
    now: number,
  ): boolean {
    if (probe) {
      probed.delete(key);
      if (probed.size >= DEFAULTS.judgeClients) evictOldest(probed, DEFAULTS.judgeClients);
      probed.set(key, now);
      return true;
    }
    const at = probed.get(key);
    if (at === undefined) return false;
    if (at > now - jail.findTimeMs) return true;
    probed.delete(key);
    return false;
  }

  /** True when the client already failed on this path (route) within findTime; else remembers it. */
  #repeated(
    clients: Map<string, Map<string, number>>,
    key: string,
    where: string,
    now: number,
    jail: ResolvedJail,
  ): boolean {
    let paths = clients.get(key);
    if (paths === undefined) {
      if (clients.size >= DEFAULTS.judgeClients) evictOldest(clients, DEFAULTS.judgeClients);
      paths = new Map();
    } else {
      clients.delete(key);
    }
    clients.set(key, paths);
    const since = now - jail.findTimeMs;
    const at = paths.get(where);
    if (at !== undefined && at > since) return true;
    // Oldest first: drop what left the window, then the oldest beyond the bound.
    for (const [p, t] of paths) {
      if (t > since) break;
      paths.delete(p);
    }
    paths.delete(where);
    paths.set(where, now);
    if (paths.size > DEFAULTS.judgePathsPerClient) paths.delete(paths.keys().next().value as string);
    return false;
  }

  /** The paths taken for broken links now, every jail. */
  brokenLinks(): BrokenLink[] {
    const now = this.#clock.now();
    const links: BrokenLink[] = [];
    for (const shared of this.#shared.values()) links.push(...shared.links(now));
    return links;
  }

  #brokenLink(link: BrokenLink, jail: ResolvedJail): void {
    const window = formatDuration((jail.sharedPaths as ResolvedSharedPaths).findTimeMs);
    this.#announcer.warner.repeat(
      'JK_WRN_BROKEN_LINK',
      `jails.${jail.name}: ${JSON.stringify(link.path)} was not found for ${link.networks} different networks within ${window}: it is taken for a broken link or a missing asset of the site, and failures on it stop counting for everyone while they keep coming. Fix the link or add the file.`,
      { event: 'brokenLink', jail: jail.name, path: link.path, networks: link.networks },
    );
    if (this.#announcer.listens('brokenLink')) this.#announcer.emit('brokenLink', link);
  }
}
