import type { IncrementInput } from '../store/store.js';

/**
 * The length of a client's next ban, fail2ban's bantime.increment rule: the first ban lasts
 * `banTimeMs`; with n earlier bans it lasts `banTimeMs × factor × m(n)`, where m(n) is
 * `multipliers[min(n, last)]` or `2^min(n, 20)`, capped at `maxTimeMs`; then `jitterMs` is added.
 * A permanent `banTimeMs` stays permanent.
 */
export function nextBanTimeMs(
  banTimeMs: number,
  increment: IncrementInput | null,
  earlierBans: number,
  jitterMs: number,
): number {
  if (banTimeMs === Number.POSITIVE_INFINITY) return banTimeMs;
  let ms = banTimeMs;
  if (increment !== null && earlierBans > 0) {
    const { multipliers } = increment;
    const m = multipliers
      ? (multipliers[Math.min(earlierBans, multipliers.length - 1)] as number)
      : 2 ** Math.min(earlierBans, 20);
    ms = Math.min(banTimeMs * increment.factor * m, increment.maxTimeMs);
  }
  return Math.round(ms + jitterMs);
}
