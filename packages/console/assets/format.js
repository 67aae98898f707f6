// Small formatters shared by the pages. Values are returned as text: lit-html escapes them.

/** 90061000 → "1d 1h 1m"; under a minute, seconds. */
export function duration(ms) {
  if (ms === null || ms === undefined) return 'permanent';
  if (!Number.isFinite(ms)) return 'permanent';
  let s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const parts = [];
  for (const [unit, size] of [
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** A time of day in the browser's zone, with seconds. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

/** A date and time in the browser's zone. */
export function dateTime(ms) {
  return new Date(ms).toLocaleString(undefined, { hour12: false });
}

/** 1234567 → "1,234,567"; null → "–". */
export function count(n) {
  return n === null || n === undefined ? '–' : n.toLocaleString('en-US');
}

/** Calls `fn` once, `ms` after the last call. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
