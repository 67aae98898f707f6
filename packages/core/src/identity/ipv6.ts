/**
 * IPv6 text to eight 16-bit words and back (RFC 4291 section 2.2; RFC 5952), for ip.ts. Written
 * here rather than taken from a dependency so that core installs alone; test/ipv6.test.ts holds it
 * to ipaddr.js and Node's `net.isIPv6` over every form and a random corpus.
 */

/**
 * The words of an IPv6 address without zone or brackets: groups of one to four hex digits, at most
 * one `::` standing for one or more zero groups, and optionally a dotted quad as the last 32 bits
 * (its strictness is the caller's: `parseIp` checks it first). Returns `undefined` for anything
 * else.
 */
export function parseIPv6(text: string): number[] | undefined {
  const length = text.length;
  if (length < 2) return undefined;
  const words: number[] = [];
  let gap = -1; // where `::` stands, as an index into words
  let i = 0;
  if (text.charCodeAt(0) === 58 /* : */) {
    if (text.charCodeAt(1) !== 58) return undefined; // one leading colon
    gap = 0;
    i = 2;
    if (i === length) return new Array<number>(8).fill(0);
  }
  while (i < length) {
    // One group: hex digits up to a colon or the end; or the dotted quad that ends the address.
    let value = 0;
    let digits = 0;
    const start = i;
    while (i < length) {
      const c = text.charCodeAt(i);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      value = value * 16 + d;
      digits++;
      i++;
    }
    if (i < length && text.charCodeAt(i) === 46 /* . */) {
      const v4 = dottedQuad(text.slice(start));
      if (v4 === undefined || words.length > 6) return undefined;
      words.push(Math.floor(v4 / 65536), v4 % 65536);
      i = length;
      break;
    }
    if (digits === 0 || digits > 4) return undefined;
    words.push(value);
    if (words.length > 8) return undefined;
    if (i === length) break;
    if (text.charCodeAt(i) !== 58) return undefined; // a character no address has
    i++;
    if (i < length && text.charCodeAt(i) === 58) {
      if (gap !== -1) return undefined; // a second `::`
      gap = words.length;
      i++;
      if (i === length) break;
    } else if (i === length) {
      return undefined; // one trailing colon
    }
  }
  if (gap === -1) return words.length === 8 ? words : undefined;
  if (words.length > 7) return undefined; // `::` stands for at least one group
  const zeros = 8 - words.length;
  const out = words.slice(0, gap);
  for (let z = 0; z < zeros; z++) out.push(0);
  for (let w = gap; w < words.length; w++) out.push(words[w] as number);
  return out;
}

/** A dotted quad as a uint32: four decimal parts of 0..255 (leading zeros are the caller's to refuse). */
function dottedQuad(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (part.length === 0 || part.length > 3) return undefined;
    let n = 0;
    for (let i = 0; i < part.length; i++) {
      const c = part.charCodeAt(i);
      if (c < 48 || c > 57) return undefined;
      n = n * 10 + (c - 48);
    }
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

/**
 * RFC 5952's text of eight words: lower-case hex without leading zeros, the longest run of two or
 * more zero words (the first of equal runs) written `::`, a lone zero word written `0`.
 */
export function formatIPv6(words: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  if (bestStart === -1) return words.map(hex).join(':');
  const head = words.slice(0, bestStart).map(hex).join(':');
  const tail = words
    .slice(bestStart + bestLength)
    .map(hex)
    .join(':');
  return `${head}::${tail}`;
}

function hex(word: number): string {
  return word.toString(16);
}
