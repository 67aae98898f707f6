import type { BrokenLink, ObserveResult } from '@jailkeeper/core/operator';

/** What the log says of one client, over the whole log (requests refused after a ban included). */
export interface ClientProfile {
  requests: number;
  /** Responses below 400. */
  successes: number;
  /** Responses of 400 and above. */
  failures: number;
  /** Different paths that failed (counted up to 1,000). */
  distinctFailingPaths: number;
  /** The last user agent seen. */
  userAgent: string;
  /** How many different user agents it sent (up to 20). */
  userAgents: number;
  firstMs: number;
  lastMs: number;
}

/** One line of a ban's evidence: a counted failure. */
export interface EvidenceLine {
  line: number;
  timeMs: number;
  text: string;
  /** True when it counted as a probe (the jail's `probes`). */
  probe: boolean;
}

/** A line of one client's story (`--explain`): the request and what each jail did with it. */
interface StoryLine {
  line: number;
  text: string;
  /** `refused` (banned then), `not watched` (no jail counts its status), or each jail's action. */
  outcome: string;
}

/** The story of one client, for `replay --explain <address>`. */
export interface ClientStory {
  address: string;
  client: string;
  profile: ClientProfile | null;
  /** Its lines (the first 500). */
  lines: StoryLine[];
  /** Lines left out of `lines`. */
  more: number;
}

/** Evidence kept per jail and client: the last failures counted, as many as a ban needs to show. */
const EVIDENCE = 20;
const PATHS_PER_CLIENT = 1000;
const AGENTS_PER_CLIENT = 20;
const STORY_LINES = 500;

interface Tracked extends ClientProfile {
  readonly paths: Set<string>;
  readonly agents: Set<string>;
}

/**
 * What a ban looks like when it may be a mistake: many successes and few distinct failures, the
 * shape of a reader who met the site's own broken links, not of a scanner.
 */
export function looksLegitimate(profile: ClientProfile): boolean {
  return (
    profile.successes >= 10 &&
    profile.distinctFailingPaths <= 8 &&
    profile.successes >= 3 * Math.max(1, profile.distinctFailingPaths)
  );
}

/**
 * Replay's notebook: a profile of every client, the evidence of each (jail, client) pair's counted
 * failures, the broken links found, and one client's story when asked.
 */
export class ReplayWitness {
  readonly #profiles = new Map<string, Tracked>();
  readonly #evidence = new Map<string, EvidenceLine[]>();
  readonly brokenLinks: BrokenLink[] = [];
  readonly story: ClientStory | undefined;

  constructor(explain?: { address: string; client: string }) {
    this.story = explain && { ...explain, profile: null, lines: [], more: 0 };
  }

  /** One request of a client, whatever happened to it. */
  request(client: string, timeMs: number, status: number, path: string, userAgent: string): void {
    let p = this.#profiles.get(client);
    if (p === undefined) {
      p = {
        requests: 0,
        successes: 0,
        failures: 0,
        distinctFailingPaths: 0,
        userAgent,
        userAgents: 0,
        firstMs: timeMs,
        lastMs: timeMs,
        paths: new Set(),
        agents: new Set(),
      };
      this.#profiles.set(client, p);
    }
    p.requests++;
    p.lastMs = timeMs;
    p.userAgent = userAgent;
    if (p.agents.size < AGENTS_PER_CLIENT) p.agents.add(userAgent);
    if (status < 400) p.successes++;
    else {
      p.failures++;
      if (p.paths.size < PATHS_PER_CLIENT) p.paths.add(path);
    }
  }

  /** The jails' outcomes for one observed line: counted failures become evidence. */
  observed(client: string, lineNo: number, timeMs: number, line: string, result: ObserveResult): void {
    for (const outcome of result.jails) {
      if (outcome.action !== 'counted' && outcome.action !== 'banned') continue;
      const key = `${outcome.jail}\u0000${client}`;
      let lines = this.#evidence.get(key);
      if (lines === undefined) {
        lines = [];
        this.#evidence.set(key, lines);
      }
      lines.push({ line: lineNo, timeMs, text: line.slice(0, 300), probe: outcome.probe === true });
      if (lines.length > EVIDENCE) lines.shift();
    }
  }

  /** The evidence of a ban: the failures of the pair counted inside the window that ended in it. */
  takeEvidence(jail: string, client: string, sinceMs: number): EvidenceLine[] {
    const key = `${jail}\u0000${client}`;
    const lines = this.#evidence.get(key) ?? [];
    this.#evidence.delete(key);
    return lines.filter((l) => l.timeMs > sinceMs);
  }

  /** One line of the explained client. */
  tell(client: string, lineNo: number, line: string, outcome: string): void {
    const story = this.story;
    if (story === undefined || story.client !== client) return;
    if (story.lines.length < STORY_LINES)
      story.lines.push({ line: lineNo, text: line.slice(0, 300), outcome });
    else story.more++;
  }

  profile(client: string): ClientProfile | null {
    const p = this.#profiles.get(client);
    if (p === undefined) return null;
    return {
      requests: p.requests,
      successes: p.successes,
      failures: p.failures,
      distinctFailingPaths: p.paths.size,
      userAgent: p.userAgent,
      userAgents: p.agents.size,
      firstMs: p.firstMs,
      lastMs: p.lastMs,
    };
  }
}

/** What one line's outcome was, in words, for a story. */
export function outcomeWords(result: ObserveResult): string {
  if (result.ignored !== null) return result.ignored === 'ignoreIp' ? 'ignored (ignoreIp)' : result.ignored;
  if (result.jails.length === 0) return 'counted nowhere';
  return result.jails
    .map((o) => {
      const probe = o.probe === true ? ' (probe)' : '';
      if (o.action === 'counted') return `${o.jail}: counted ${o.count}/${o.maxRetry}${probe}`;
      if (o.action === 'banned') return `${o.jail}: BANNED at ${o.count}/${o.maxRetry}${probe}`;
      if (o.action === 'repeated') return `${o.jail}: not counted (the same failing path again)`;
      if (o.action === 'shared') return `${o.jail}: not counted (a broken link of the site)`;
      return `${o.jail}: ${o.action}`;
    })
    .join('; ');
}
