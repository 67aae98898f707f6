// Statistics for interleaved rounds: medians with distribution-free 95% confidence intervals.

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** P(X <= k) for X ~ Binomial(n, 1/2). */
function binomialCdf(k, n) {
  let term = 0.5 ** n; // P(X = 0)
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    sum += term;
    term = (term * (n - i)) / (i + 1);
  }
  return sum;
}

/**
 * The median of `xs` and an order-statistic confidence interval for it: [x(k), x(n+1-k)] with the
 * largest k whose two-sided coverage 1 - 2·P(Binomial(n, 1/2) < k) is at least `level`. It assumes
 * only that the rounds are independent draws (no normality). Needs 6 values for 95%; with fewer,
 * lo and hi are NaN. Returns { median, lo, hi, coverage, n }.
 */
export function medianCI(xs, level = 0.95) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const n = s.length;
  let k = 0;
  while (k + 1 <= n / 2 && 1 - 2 * binomialCdf(k, n) >= level) k++;
  // k is now the count of values below the interval plus one, or 0 when no interval reaches level.
  if (k === 0) return { median: median(s), lo: Number.NaN, hi: Number.NaN, coverage: Number.NaN, n };
  return { median: median(s), lo: s[k - 1], hi: s[n - k], coverage: 1 - 2 * binomialCdf(k - 1, n), n };
}

/** A ratio as a signed percentage: 1.021 -> "+2.1%". */
export function signedPercent(ratio, digits = 1) {
  const p = (ratio - 1) * 100;
  return `${p >= 0 ? '+' : '−'}${Math.abs(p).toFixed(digits)}%`;
}

/** "+2.1% [+1.3, +3.0]": a ratio's median change with its interval. */
export function formatRatioCI(ci, digits = 1) {
  if (!Number.isFinite(ci.median)) return 'n/a';
  const interval = Number.isFinite(ci.lo)
    ? ` [${signedPercent(ci.lo, digits)}, ${signedPercent(ci.hi, digits)}]`
    : ' [n/a]';
  return `${signedPercent(ci.median, digits)}${interval}`;
}

/** "98.7% [97.9, 99.4]": a ratio as a percentage of the reference with its interval. */
export function formatPercentCI(ci, digits = 1) {
  if (!Number.isFinite(ci.median)) return 'n/a';
  const f = (x) => `${(x * 100).toFixed(digits)}%`;
  return `${f(ci.median)}${Number.isFinite(ci.lo) ? ` [${f(ci.lo)}, ${f(ci.hi)}]` : ' [n/a]'}`;
}

/** "12.3 [11.9, 12.8]": a value with its interval. */
export function formatCI(ci, digits = 1) {
  if (!Number.isFinite(ci.median)) return 'n/a';
  const f = (x) => x.toFixed(digits);
  return `${f(ci.median)}${Number.isFinite(ci.lo) ? ` [${f(ci.lo)}, ${f(ci.hi)}]` : ''}`;
}

/** A small seeded PRNG (mulberry32), so that a run's order can be reproduced from its seed. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy (Fisher-Yates) drawn from `random`. */
export function shuffled(items, random) {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
