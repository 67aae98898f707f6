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

/** The most texts a pool keeps: past it, texts are not shared any more. */
const POOL_CAP = 4096;

/**
 * Repeated texts of many bans (jail names, the reasons of automatic bans) kept once: a million
 * loaded bans must not hold a million copies of "maxRetry (5) failures within 10m". Bounded: past
 * the cap, texts are not shared any more. A text read from a reply's bytes is found by those bytes
 * (a hash of them, then compared), so that a million reads of the same jail make no string at all.
 */
export class TextPool {
  readonly #texts = new Map<string, string>();
  /** hash of a text's UTF-8 bytes → the texts with that hash, and their bytes. */
  readonly #byBytes = new Map<number, { bytes: Uint8Array; text: string }[]>();
  #sized = 0;

  get(text: string): string {
    const held = this.#texts.get(text);
    if (held !== undefined) return held;
    if (this.#texts.size < POOL_CAP) this.#texts.set(text, text);
    return text;
  }

  /** The text of `blob`'s bytes [from, to) (UTF-8), shared. */
  read(blob: Buffer, from: number, to: number): string {
    let h = 0x811c9dc5 ^ (to - from);
    for (let i = from; i < to; i++) h = Math.imul(h ^ (blob[i] as number), 0x01000193);
    const same = this.#byBytes.get(h);
    if (same !== undefined) {
      for (const { bytes, text } of same) if (equalBytes(bytes, blob, from, to)) return text;
    }
    const text = this.get(blob.toString('utf8', from, to));
    if (this.#sized < POOL_CAP) {
      this.#sized++;
      const entry = { bytes: Uint8Array.prototype.slice.call(blob, from, to), text };
      if (same === undefined) this.#byBytes.set(h, [entry]);
      else same.push(entry);
    }
    return text;
  }
}

function equalBytes(bytes: Uint8Array, blob: Buffer, from: number, to: number): boolean {
  if (bytes.length !== to - from) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== blob[from + i]) return false;
  return true;
}

const NEWLINE = 10;
const NUL = 0;
const HASH = 35;
const BAR = 124;
const MINUS = 45;

/**
 * A client's bans as its shard's hash stores them, read from the reply's bytes [from, end): one
 * line per jail, `jail|start|end|count|manual|reason` (end -1: permanent; the reason is last and
 * may hold `|`). A million bans make no string but their clients' (a string per field and per
 * number parsed made most of a load's garbage and much of its time).
 */
export function decodeBans(
  client: string,
  value: Buffer,
  pool: TextPool,
  into: Ban[],
  from = 0,
  end = value.length,
): void {
  while (from < end) {
    let to = from;
    while (to < end && value[to] !== NEWLINE) to++;
    decodeLine(value, from, to, client, pool, into);
    from = to + 1;
  }
}

/**
 * A shard as READ_SHARD packs it, its hash's fields and values (client, its bans) joined by NUL,
 * decoded a part at a time: from byte `at`, until `into` holds `stop` bans, the pieces seen added
 * to `seen.pieces`. Returns where to go on from; past `blob.length` (or 0 for an empty blob): done.
 * The shard is whole when the pieces seen are its count (see shardWhole).
 */
export function decodeShard(
  blob: Buffer,
  pool: TextPool,
  into: Ban[],
  at: number,
  stop: number,
  seen: { pieces: number },
): number {
  const size = blob.length;
  if (size === 0) return 1;
  let pieces = 0;
  let from = at;
  while (from <= size && into.length < stop) {
    let mid = from;
    while (mid < size && blob[mid] !== NUL) mid++;
    let to = mid + 1;
    while (to < size && blob[to] !== NUL) to++;
    pieces += to <= size ? 2 : 1;
    // '#': the hash's own fields (the latest end, the tidy cursor), not a client
    if (to <= size && blob[from] !== HASH) {
      decodeBans(blob.toString('utf8', from, mid), blob, pool, into, mid + 1, to);
    }
    from = to + 1;
  }
  seen.pieces += pieces;
  return from;
}

/**
 * True when a shard decoded whole splits into its `count` of fields and values; false when a NUL
 * inside one made more pieces: the bans pushed are then wrong, and the shard must be read field by
 * field.
 */
export function shardWhole(blob: Buffer, count: number, seen: { pieces: number }): boolean {
  return blob.length === 0 ? count === 0 : seen.pieces === count;
}

/** One line of a client's bans (see decodeBans); a line without its six fields is skipped. */
function decodeLine(
  blob: Buffer,
  from: number,
  to: number,
  client: string,
  pool: TextPool,
  into: Ban[],
): void {
  const a = bar(blob, from, to);
  if (a === -1) return;
  const b = bar(blob, a + 1, to);
  if (b === -1) return;
  const c = bar(blob, b + 1, to);
  if (c === -1) return;
  const d = bar(blob, c + 1, to);
  if (d === -1) return;
  const e = bar(blob, d + 1, to);
  if (e === -1) return;
  const endMs = integer(blob, b + 1, c);
  into.push({
    jail: pool.read(blob, from, a),
    client,
    startMs: integer(blob, a + 1, b),
    endMs: endMs < 0 ? Number.POSITIVE_INFINITY : endMs,
    banCount: integer(blob, c + 1, d),
    reason: pool.read(blob, e + 1, to),
    manual: e - d === 2 && blob[d + 1] === 49, // '1'
  });
}

/** The first `|` in [from, to), or -1. */
function bar(blob: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) if (blob[i] === BAR) return i;
  return -1;
}

/** The number written in [from, to): the scripts write integers (%d); anything else as Number reads it. */
function integer(blob: Buffer, from: number, to: number): number {
  let i = from;
  const negative = blob[i] === MINUS;
  if (negative) i++;
  let n = 0;
  for (; i < to; i++) {
    const digit = (blob[i] as number) - 48;
    if (digit < 0 || digit > 9) return Number(blob.toString('latin1', from, to));
    n = n * 10 + digit;
  }
  return negative ? -n : n;
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

/** No seqs taken (a script that changed no ban): shared, never written to. */
const NO_SEQS: readonly number[] = Object.freeze([]);

/** Where a script's changes sit in the shard's history: its epoch and the seqs it took. */
export interface Versioned {
  readonly epoch: string | undefined;
  readonly seqs: readonly number[];
}

/** The version part of a script's reply. */
export function versionOf(out: { epoch?: unknown; seqs?: unknown }): Versioned {
  return {
    epoch: typeof out.epoch === 'string' ? out.epoch : undefined,
    seqs: Array.isArray(out.seqs) ? (out.seqs as number[]) : NO_SEQS,
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

/**
 * A counted failure's answer, from one element of a conversation's reply: `[count, maxRetry,
 * pardoned 1/0]` for a failure that banned no one (no version to note), else the script's object.
 */
export function failureOf(raw: unknown): FailureReply {
  if (Array.isArray(raw)) {
    return {
      epoch: undefined,
      seqs: NO_SEQS,
      result: {
        count: raw[0] as number,
        maxRetry: threshold(raw[1] as number),
        pardoned: raw[2] === 1,
        ban: null,
        alreadyBanned: false,
        wouldBan: null,
        recidive: null,
        recidiveDryRun: false,
      },
    };
  }
  const out = raw as RawFailure;
  // Written out, not spread from versionOf(): one object per counted failure, not three.
  return {
    epoch: typeof out.epoch === 'string' ? out.epoch : undefined,
    seqs: Array.isArray(out.seqs) ? (out.seqs as number[]) : NO_SEQS,
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

/**
 * A reservation's answer, from one element of a conversation's reply: `[admitted 1/0, count,
 * inFlight, maxRetry]` without a ban, else the script's object (with the ban).
 */
export function reservationOf(raw: unknown): Reservation {
  if (Array.isArray(raw)) {
    return {
      admitted: raw[0] === 1,
      ban: null,
      count: raw[1] as number,
      inFlight: raw[2] as number,
      maxRetry: threshold(raw[3] as number),
    };
  }
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
