import type { Ban, FailureResult, FailureRule, Reservation } from '@jailkeeper/core/store';

/** The most failure times a counter keeps, as in the memory store. */
const MAX_KEPT = 1000;

/** Redis writes a permanent ban's end as -1; the engine uses Infinity. */
export function fromRedis(ban: Ban): Ban {
  return ban.endMs < 0 ? { ...ban, endMs: Number.POSITIVE_INFINITY } : ban;
}

/** The end as Redis writes it. */
export const toRedisEnd = (endMs: number) => (endMs === Number.POSITIVE_INFINITY ? -1 : endMs);

/** A threshold as a script returns it: -1 stands for Infinity (JSON has none). */
const threshold = (n: number) => (n < 0 ? Number.POSITIVE_INFINITY : n);

/**
 * Repeated texts of many bans (jail names, the reasons of automatic bans) kept once: a million
 * loaded bans must not hold a million copies of "maxRetry (5) failures within 10m". Bounded: past
 * the cap, texts are not shared any more.
 */
export class TextPool {
  readonly #texts = new Map<string, string>();

  get(text: string): string {
    const held = this.#texts.get(text);
    if (held !== undefined) return held;
    if (this.#texts.size < 4096) this.#texts.set(text, text);
    return text;
  }
}

/**
 * A client's bans as its shard's hash stores them: one line per jail,
 * `jail|start|end|count|manual|reason` (end -1: permanent). The reason is last and may hold `|`.
 */
export function decodeBans(client: string, value: string, pool: TextPool, into: Ban[]): void {
  let from = 0;
  while (from < value.length) {
    let to = value.indexOf('\n', from);
    if (to === -1) to = value.length;
    const a = value.indexOf('|', from);
    const b = value.indexOf('|', a + 1);
    const c = value.indexOf('|', b + 1);
    const d = value.indexOf('|', c + 1);
    const e = value.indexOf('|', d + 1);
    if (a !== -1 && e !== -1 && e < to) {
      const end = Number(value.slice(b + 1, c));
      into.push({
        jail: pool.get(value.slice(from, a)),
        client,
        startMs: Number(value.slice(a + 1, b)),
        endMs: end < 0 ? Number.POSITIVE_INFINITY : end,
        banCount: Number(value.slice(c + 1, d)),
        reason: pool.get(value.slice(e + 1, to)),
        manual: value.slice(d + 1, e) === '1',
      });
    }
    from = to + 1;
  }
}

/** The text a ban's reason is stored as: one line (lines separate a client's bans). */
export const storableReason = (reason: string) => reason.replace(/[\r\n]+/g, ' ');

/**
 * A rule's constant arguments, joined once per rule: each counted failure then sends four
 * arguments. See lua/failure.ts for the positions.
 */
export function packRule(rule: FailureRule, channel: string): string {
  const inc = rule.increment;
  const r = rule.recidive;
  return [
    rule.findTimeMs,
    rule.maxRetry,
    rule.pardonMaxRetry === Number.POSITIVE_INFINITY ? 'inf' : rule.pardonMaxRetry,
    rule.banTimeMs === Number.POSITIVE_INFINITY ? -1 : rule.banTimeMs,
    inc ? inc.factor : '',
    inc?.multipliers ? inc.multipliers.join(',') : '',
    inc ? (inc.maxTimeMs === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : inc.maxTimeMs) : 0,
    inc?.overallJails ? 1 : 0,
    '', // jitterMs: per call
    rule.dryRun ? 1 : 0,
    rule.historyTimeMs,
    r ? 1 : 0,
    r?.findTimeMs ?? 0,
    r?.maxRetry ?? 0,
    r ? (r.banTimeMs === Number.POSITIVE_INFINITY ? -1 : r.banTimeMs) : 0,
    r?.dryRun ? 1 : 0,
    storableReason(rule.reason).replace(/\|/g, '/'), // '|' separates the fields
    channel,
    r?.jail ?? 'recidive',
    MAX_KEPT,
  ].join('|');
}

/** Where a script's changes sit in the shard's history: its epoch and the seqs it took. */
export interface Versioned {
  readonly epoch: string | undefined;
  readonly seqs: readonly number[];
}

/** The version part of a script's reply. */
export function versionOf(out: { epoch?: unknown; seqs?: unknown }): Versioned {
  return {
    epoch: typeof out.epoch === 'string' ? out.epoch : undefined,
    seqs: Array.isArray(out.seqs) ? (out.seqs as number[]) : [],
  };
}

/** A script's reply to a counted failure. */
export interface FailureReply extends Versioned {
  readonly result: FailureResult;
}

/** A failure's result as the conversation script answers it (see lua/failure.ts). */
interface RawFailure {
  count: number;
  maxRetry: number;
  pardoned?: boolean;
  alreadyBanned?: boolean;
  ban?: Ban;
  wouldBan?: Ban;
  recidive?: Ban;
  recidiveDryRun?: boolean;
  epoch?: string;
  seqs?: number[];
}

/** A counted failure's answer, from one element of a conversation's reply. */
export function failureOf(raw: unknown): FailureReply {
  const out = raw as RawFailure;
  return {
    ...versionOf(out),
    result: {
      count: out.count,
      maxRetry: threshold(out.maxRetry),
      pardoned: out.pardoned === true,
      ban: out.ban ? fromRedis(out.ban) : null,
      alreadyBanned: out.alreadyBanned === true,
      wouldBan: out.wouldBan ? fromRedis(out.wouldBan) : null,
      recidive: out.recidive ? fromRedis(out.recidive) : null,
      recidiveDryRun: out.recidiveDryRun === true,
    },
  };
}

/** A reservation's answer, from one element of a conversation's reply. */
export function reservationOf(raw: unknown): Reservation {
  const out = raw as { admitted: boolean; ban?: Ban; count: number; inFlight: number; maxRetry: number };
  return {
    admitted: out.admitted === true,
    ban: out.ban ? fromRedis(out.ban) : null,
    count: out.count,
    inFlight: out.inFlight,
    maxRetry: threshold(out.maxRetry),
  };
}

/** A list a script returns: cjson writes an empty table as `{}`. */
export function listOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
