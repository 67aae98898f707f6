import { type ParsedIp, parseIPv4, parseIp } from './ip.js';

/** Request headers as Node gives them (lower-case names; duplicates joined with ", "). */
export type Headers = Readonly<Record<string, string | string[] | undefined>>;

/**
 * How a forwarding header is split into hops:
 * - `list`: X-Forwarded-For or X-Real-IP, comma-separated; an empty entry is malformed;
 * - `forwarded`: RFC 7239 elements, commas inside quoted strings kept;
 * - `express`: X-Forwarded-For exactly as Express reads it (the `forwarded` package under
 *   proxy-addr): entries trimmed of spaces, empty entries skipped.
 */
export type HeaderGrammar = 'list' | 'forwarded' | 'express';

/** One header as a string (Node joins duplicates with ", "; an array is joined the same way). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/**
 * Parses one X-Forwarded-For / X-Real-IP entry: an address, or the de-facto forms some load
 * balancers write, `1.2.3.4:port`, `[v6]` and `[v6]:port`.
 */
function parseListEntry(entry: string): ParsedIp | undefined {
  if (entry.charCodeAt(0) === 91 /* [ */) {
    const close = entry.indexOf(']');
    if (close === -1) return undefined;
    const rest = entry.slice(close + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    const inner = entry.slice(1, close);
    // Brackets hold IPv6 text only; a mapped address inside them is still the IPv4 client.
    return inner.includes(':') ? parseIp(inner) : undefined;
  }
  const colon = entry.indexOf(':');
  if (colon !== -1 && colon === entry.lastIndexOf(':')) {
    // exactly one colon: IPv4 with a port
    if (!/^\d{1,5}$/.test(entry.slice(colon + 1))) return undefined;
    const v4 = parseIPv4(entry.slice(0, colon));
    return v4 === undefined ? undefined : { family: 4, value: v4 };
  }
  return parseIp(entry);
}

/**
 * Parses one RFC 7239 `for=` value: a token (an IPv4 address) or a quoted string holding an
 * IPv4 address with an optional port, or a bracketed IPv6 address with an optional port.
 * Obfuscated identifiers (`unknown`, `_hidden`) are not addresses.
 */
function parseForwardedFor(raw: string): ParsedIp | undefined {
  if (raw.charCodeAt(0) === 34 /* " */) {
    if (raw.length < 2 || raw.charCodeAt(raw.length - 1) !== 34) return undefined;
    const inner = raw.slice(1, -1);
    if (inner.includes('"') || inner.includes('\\')) return undefined;
    return parseListEntry(inner);
  }
  // An unquoted token cannot hold ':' or '[' (RFC 7239 section 6): only a plain IPv4 address.
  const v4 = parseIPv4(raw);
  return v4 === undefined ? undefined : { family: 4, value: v4 };
}

/** Splits on `separator` outside quoted strings (for one Forwarded element, already isolated). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** The `for=` address of one Forwarded element; undefined when it has none or an invalid one. */
function forwardedElement(element: string): ParsedIp | undefined {
  if (element.includes('\\')) return undefined; // no valid for= value needs an escape
  let found: ParsedIp | undefined;
  let seen = false;
  for (const pair of splitOutsideQuotes(element, ';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    if (seen) return undefined; // two for= in one element: ambiguous
    seen = true;
    found = parseForwardedFor(pair.slice(eq + 1).trim());
  }
  return found;
}

/** The text between `start` and `end` without the spaces around it (only U+0020, as Express trims). */
function trimSpaces(value: string, start: number, end: number): string {
  let a = start;
  let b = end;
  while (a < b && value.charCodeAt(a) === 32) a++;
  while (b > a && value.charCodeAt(b - 1) === 32) b--;
  return value.slice(a, b);
}

/**
 * Walks a forwarding header from the right, one hop at a time, without reading further than
 * needed. The right end is written by the nearest (trusted) proxy; the left end may be written by
 * anyone, so it is never parsed before the hops to its right have been judged: padding, unbalanced
 * quotes or garbage on the left cannot change how the right end is read.
 */
export class HopsFromRight {
  readonly #value: string;
  readonly #grammar: HeaderGrammar;
  #end: number;
  #raw = '';

  constructor(value: string, grammar: HeaderGrammar) {
    this.#value = value;
    this.#grammar = grammar;
    this.#end = value.length;
  }

  /**
   * With the `express` grammar, the text of the entry last read as proxy-addr hands it to the
   * app's trust function: trimmed of spaces, not canonical.
   */
  get raw(): string {
    return this.#raw;
  }

  /**
   * True when an entry is left of the one last read, without parsing it. proxy-addr never asks
   * whether the furthest entry is trusted: reached, it is the client.
   */
  hasNext(): boolean {
    if (this.#end < 0) return false;
    if (this.#grammar !== 'express') return true;
    // Express skips empty entries: only separators left means nothing left.
    const value = this.#value;
    for (let i = this.#end - 1; i >= 0; i--) {
      const c = value.charCodeAt(i);
      if (c !== 32 && c !== 44 /* , */) return true;
    }
    this.#end = -1;
    return false;
  }

  /** The next hop leftwards: an address, `undefined` for a malformed one, or `null` at the start. */
  next(): ParsedIp | undefined | null {
    const value = this.#value;
    for (;;) {
      if (this.#end < 0) return null;
      let start: number;
      if (this.#grammar === 'forwarded') {
        let quoted = false;
        start = this.#end - 1;
        for (; start >= 0; start--) {
          const c = value.charCodeAt(start);
          if (c === 34 /* " */) quoted = !quoted;
          else if (c === 44 /* , */ && !quoted) break;
        }
      } else {
        start = this.#end === 0 ? -1 : value.lastIndexOf(',', this.#end - 1);
      }
      const end = this.#end;
      this.#end = start;
      if (this.#grammar === 'express') {
        const raw = trimSpaces(value, start + 1, end);
        if (raw === '') continue;
        this.#raw = raw;
        return parseListEntry(raw.trim());
      }
      const entry = value.slice(start + 1, end).trim();
      return this.#grammar === 'forwarded' ? forwardedElement(entry) : parseListEntry(entry);
    }
  }
}
