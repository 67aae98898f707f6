// Shared timing for the micro-benchmarks: warm up, then the median of several rounds.

const format = (ns) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} us` : `${ns.toFixed(1)} ns`);

/** Times a synchronous call; prints and returns the median ns per call. */
export function measure(label, iterations, fn) {
  for (let i = 0; i < Math.min(iterations, 200_000); i++) fn(i);
  const rounds = [];
  for (let r = 0; r < 7; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i);
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  rounds.sort((a, b) => a - b);
  console.log(`${label.padEnd(62)} ${format(rounds[3]).padStart(10)}/call (min ${format(rounds[0])})`);
  return rounds[3];
}

/** Times an awaited call; prints and returns the median ns per call. */
export async function measureAsync(label, iterations, fn) {
  for (let i = 0; i < 100_000; i++) await fn(i);
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn(i);
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  rounds.sort((a, b) => a - b);
  console.log(`${label.padEnd(62)} ${format(rounds[2]).padStart(10)}/call (min ${format(rounds[0])})`);
  return rounds[2];
}
