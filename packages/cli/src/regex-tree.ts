/**
 * A small parser of the Python regular expressions fail2ban filters are written in, into a tree
 * that the importer reads for meaning (which status, which method, which paths, which user agent).
 * It never runs the expressions.
 */

/** How often a node repeats. */
interface Quant {
  readonly min: number;
  readonly max: number;
}

/** A character class: `\d`, `\s`, `\S`, `[...]`. `chars` is its few members, or null when many. */
interface SetNode {
  readonly t: 'set';
  readonly chars: readonly string[] | null;
  /** It can match `/` (so a repetition of it can cross path segments). */
  readonly slash: boolean;
  /** It can match a space. */
  readonly space: boolean;
  /** `\s`: whitespace only. */
  readonly isSpace: boolean;
  readonly src: string;
  q?: Quant;
}

export type RegexNode =
  | { readonly t: 'lit'; readonly c: string; q?: Quant }
  | { readonly t: 'any'; q?: Quant }
  | SetNode
  | { readonly t: 'group'; readonly alts: RegexNode[][]; readonly look: boolean; q?: Quant }
  | { readonly t: 'anchor'; q?: Quant }
  | { readonly t: 'tag'; readonly name: string; q?: Quant };

const TAG = /^<(\/?F-[A-Za-z0-9_-]+|HOST|ADDR|IP4|IP6|CIDR|SUBNET|DNS|SKIPLINES)>/;
const INF = Number.POSITIVE_INFINITY;

/** Parses a regular expression into its top-level alternatives. */
export function parseRegex(src: string): RegexNode[][] {
  let i = 0;

  const set = (chars: string[] | null, slash: boolean, space: boolean, from: number, isSpace = false) =>
    ({ t: 'set', chars, slash, space, isSpace, src: src.slice(from, i) }) as SetNode;

  function readEscape(inClass: boolean): RegexNode {
    const from = i;
    const c = src[i + 1] ?? '\\';
    i += 2;
    switch (c) {
      case 'd':
        return set([...'0123456789'], false, false, from);
      case 'D':
      case 'W':
        return set(null, true, true, from);
      case 'w':
        return set(null, false, false, from);
      case 's':
        return set(null, false, true, from, true);
      case 'S':
        return set(null, true, false, from);
      case 'b':
      case 'B':
      case 'A':
      case 'Z':
      case 'z':
        return inClass ? { t: 'lit', c: '\b' } : { t: 'anchor' };
      case 'n':
        return { t: 'lit', c: '\n' };
      case 't':
        return { t: 'lit', c: '\t' };
      case 'r':
        return { t: 'lit', c: '\r' };
      case 'x': {
        const hex = /^[0-9a-fA-F]{2}/.exec(src.slice(i));
        if (hex) {
          i += 2;
          return { t: 'lit', c: String.fromCharCode(Number.parseInt(hex[0], 16)) };
        }
        return { t: 'lit', c: 'x' };
      }
      default:
        // \1..\9 are back-references: whatever the group held.
        if (/[1-9]/.test(c)) return set(null, true, true, from);
        return { t: 'lit', c };
    }
  }

  function charClass(): SetNode {
    const from = i;
    i++; // [
    const negated = src[i] === '^';
    if (negated) i++;
    const members: string[] = [];
    let many = false;
    let slash = false;
    let space = false;
    let first = true;
    while (i < src.length && (src[i] !== ']' || first)) {
      first = false;
      let ch: string;
      if (src[i] === '\\') {
        const node = readEscape(true);
        if (node.t === 'set') {
          many = true;
          slash ||= node.slash;
          space ||= node.space;
          continue;
        }
        ch = (node as { c: string }).c;
      } else {
        ch = src[i] as string;
        i++;
      }
      if (src[i] === '-' && src[i + 1] !== ']' && i + 1 < src.length) {
        i++;
        const to = src[i] === '\\' ? ((readEscape(true) as { c?: string }).c ?? ch) : (src[i++] as string);
        const a = ch.charCodeAt(0);
        const b = to.charCodeAt(0);
        if (a <= 47 && b >= 47) slash = true;
        if (a <= 32 && b >= 32) space = true;
        if (b - a > 6) many = true;
        else for (let x = a; x <= b; x++) members.push(String.fromCharCode(x));
        continue;
      }
      if (ch === '/') slash = true;
      if (ch === ' ') space = true;
      members.push(ch);
    }
    i++; // ]
    if (negated) return set(null, !slash, !space, from);
    return set(many || members.length > 6 ? null : [...new Set(members)], slash, space, from);
  }

  function atom(): RegexNode | undefined {
    const c = src[i] as string;
    if (c === '(') {
      i++;
      let look = false;
      if (src[i] === '?') {
        const rest = src.slice(i);
        if (rest.startsWith('?:')) i += 2;
        else if (rest.startsWith('?P<') || /^\?<[A-Za-z_]/.test(rest)) i = src.indexOf('>', i) + 1;
        else if (rest.startsWith('?P=')) {
          i = src.indexOf(')', i) + 1;
          return { t: 'set', chars: null, slash: true, space: true, isSpace: false, src: '(?P=)' };
        } else if (/^\?<?[=!]/.test(rest)) {
          look = true;
          i += rest[1] === '<' ? 3 : 2;
        } else if (/^\?[aiLmsux-]+\)/.test(rest)) {
          i = src.indexOf(')', i) + 1;
          return undefined;
        } else if (/^\?[aiLmsux-]+:/.test(rest)) i = src.indexOf(':', i) + 1;
      }
      const alts = alternatives();
      if (src[i] === ')') i++;
      return { t: 'group', alts, look };
    }
    if (c === '[') return charClass();
    if (c === '.') {
      i++;
      return { t: 'any' };
    }
    if (c === '^' || c === '$') {
      i++;
      return { t: 'anchor' };
    }
    if (c === '\\') return readEscape(false);
    if (c === '<') {
      const tag = TAG.exec(src.slice(i));
      if (tag) {
        i += tag[0].length;
        return { t: 'tag', name: tag[1] as string };
      }
    }
    i++;
    return { t: 'lit', c };
  }

  function quantifier(node: RegexNode): void {
    const c = src[i];
    let q: Quant | undefined;
    if (c === '*') q = { min: 0, max: INF };
    else if (c === '+') q = { min: 1, max: INF };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (!m) return;
      const min = Number(m[1]);
      q = { min, max: m[2] === undefined ? min : m[3] === '' ? INF : Number(m[3]) };
      i += m[0].length - 1;
    }
    if (q === undefined) return;
    i++;
    if (src[i] === '?' || src[i] === '+') i++; // lazy or possessive: the same set of strings
    node.q = node.q ? { min: node.q.min * q.min, max: node.q.max * q.max } : q;
  }

  function alternatives(): RegexNode[][] {
    const alts: RegexNode[][] = [[]];
    while (i < src.length && src[i] !== ')') {
      if (src[i] === '|') {
        alts.push([]);
        i++;
        continue;
      }
      const node = atom();
      if (node === undefined) continue;
      quantifier(node);
      (alts[alts.length - 1] as RegexNode[]).push(node);
    }
    return alts;
  }

  const top = alternatives();
  while (i < src.length) {
    // An unbalanced ")": read on as a literal, as nothing better can be done.
    i++;
    const more = alternatives();
    (top[top.length - 1] as RegexNode[]).push(...(more[0] ?? []));
    top.push(...more.slice(1));
  }
  return top;
}

/** A literal character, taken once. */
export function isLit(node: RegexNode | undefined, c?: string): node is { t: 'lit'; c: string } {
  return node !== undefined && node.t === 'lit' && node.q === undefined && (c === undefined || node.c === c);
}

/** A space, `\s`, `\s+` or `\s*`. */
export function isSpace(node: RegexNode | undefined): boolean {
  if (node === undefined) return false;
  if (node.t === 'lit') return node.c === ' ' || node.c === '\t';
  return node.t === 'set' && node.isSpace;
}

/** Something that matches any run of text: `.*`, `.+`, `\S*`, `[^"]*`, `.*?`. */
export function isAnyRun(node: RegexNode | undefined): boolean {
  if (node === undefined || node.q === undefined || node.q.max !== INF) return false;
  return node.t === 'any' || (node.t === 'set' && node.chars === null && !node.isSpace);
}

/** Nothing that constrains what it matches: an anchor, optional whitespace or an any-run. */
export function isLoose(node: RegexNode): boolean {
  return node.t === 'anchor' || isAnyRun(node) || (isSpace(node) && node.q !== undefined && node.q.min === 0);
}

/** The text of a sequence of single literal characters, or undefined when it is not one. */
export function literalText(nodes: readonly RegexNode[]): string | undefined {
  let text = '';
  for (const node of nodes) {
    if (!isLit(node)) return undefined;
    text += node.c;
  }
  return text;
}

/** The node itself if it is a plain group (not a look-around, not repeated), for reading its alternatives. */
export function plainGroup(node: RegexNode | undefined): RegexNode[][] | undefined {
  if (node === undefined || node.t !== 'group' || node.look || node.q !== undefined) return undefined;
  return node.alts;
}
