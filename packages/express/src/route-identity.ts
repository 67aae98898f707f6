/**
 * The route Express chose, read from its own router as it dispatches: each layer of the app's
 * router tree (routes, routers mounted with `app.use(path, router)`, handlers mounted with
 * `app.use(path, fn)`) is wrapped once, so that when Express enters it the request learns the
 * layer's pattern. The full pattern of a route is the patterns of the routers it is mounted in,
 * then its own: `/t/:tenant` + `/login`, whatever text matched them (`/T/acme/login/`).
 *
 * Express 5 (router 2) keeps each layer's pattern (`rawPath`); Express 4 keeps only the RegExp
 * path-to-regexp 0.1 built from it, which is read back here (its output has one grammar). A layer
 * whose pattern is a RegExp of the app's own has no pattern text: requests it serves are matched
 * by their path, as without a router.
 */

/** A layer of Express's router (4 and 5): only what is read here. */
export interface Layer {
  handle: ((...args: unknown[]) => unknown) & { stack?: Layer[] };
  route?: { path: unknown; stack: Layer[] };
  /** Express 5: the pattern as declared. */
  rawPath?: unknown;
  /** Express 4: path-to-regexp's RegExp and its keys. */
  regexp?: RegExp & { fast_slash?: boolean; fast_star?: boolean };
  keys?: Array<{ name: string | number; optional?: boolean }>;
  /** The text the layer matched, set by Express 4 and router < 2.3 just before it calls the layer. */
  path?: string;
}

/** A router (Express 4's `app._router` and routers, Express 5's `app.router` and routers). */
export interface Router {
  stack: Layer[];
  /** Set on an app's router; `undefined` (case-insensitive) on `express.Router()` without options. */
  caseSensitive?: boolean;
  strict?: boolean;
}

/** A layer's pattern: one or more pattern texts, or `undefined` for a RegExp of the app's own. */
export type Patterns = readonly string[] | undefined;

/**
 * The patterns of a layer as declared. Express 5 keeps them; Express 4's are read back from
 * path-to-regexp 0.1's output: `^\/t(?:\/([^/]+?))\/?(?=\/|$)` is `/t/:tenant`.
 */
export function patternsOf(layer: Layer): Patterns {
  if (layer.route !== undefined) return asPatterns(layer.route.path);
  if ('rawPath' in layer) return asPatterns(layer.rawPath);
  const re = layer.regexp;
  if (re === undefined) return undefined;
  if (re.fast_slash === true) return ['/'];
  if (re.fast_star === true) return ['*'];
  const keys = [...(layer.keys ?? [])];
  const out: string[] = [];
  // Array elements are joined with '|', each starting with '^' (a '|' inside one never precedes '^').
  for (const branch of re.source.split('|^')) {
    const text = readBack(branch.startsWith('^') ? branch : `^${branch}`, keys);
    if (text === undefined) return undefined;
    out.push(text);
  }
  return out;
}

function asPatterns(path: unknown): Patterns {
  const list = Array.isArray(path) ? path.flat(Number.POSITIVE_INFINITY) : [path];
  if (list.length === 0 || !list.every((p): p is string => typeof p === 'string')) return undefined;
  return list;
}

/** The tails path-to-regexp 0.1 appends: non-strict or strict, routes (`$`) or mounts (lookahead). */
const TAILS = ['\\/?(?=\\/|$)', '(?=\\/|$)', '\\/?(?:\\/|$)', '(?:\\/|$)', '\\/?$', '$'];

/** The index of the `)` closing the group opened at `open`, skipping escapes and classes. */
function closing(source: string, open: number): number {
  let depth = 0;
  for (let i = open; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '[') {
      while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return -1;
}

/**
 * One branch of a path-to-regexp 0.1 RegExp back to its pattern, or undefined for a RegExp that
 * path-to-regexp did not write. Parameters come back as `:name` (`:name?` when optional), `*` as
 * `*`; a parameter's own expression (`:id(\d+)`) is dropped, as rules ignore it.
 */
function readBack(
  branch: string,
  keys: Array<{ name: string | number; optional?: boolean }>,
): string | undefined {
  let text = branch.slice(1);
  for (const tail of TAILS) {
    if (text.endsWith(tail)) {
      text = text.slice(0, -tail.length);
      break;
    }
  }
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return undefined; // \d, \w: a RegExp
      out += next;
      i++;
    } else if (text.startsWith('(.*)', i)) {
      keys.shift();
      out += '*';
      i += 3;
    } else if (text.startsWith('(?:', i)) {
      // A parameter: (?:\/(capture))? or (?:\.(capture)) or (?:(capture)) after other text.
      const end = closing(text, i);
      if (end === -1) return undefined;
      const inner = text.slice(i + 3, end);
      const lead = inner.startsWith('\\/') ? '/' : inner.startsWith('\\.') ? '.' : '';
      if (!inner.slice(lead === '' ? 0 : 2).startsWith('(')) return undefined;
      const key = keys.shift();
      if (key === undefined || typeof key.name !== 'string') return undefined;
      const optional = text[end + 1] === '?';
      out += `${lead}:${key.name}${optional ? '?' : ''}`;
      i = end + (optional ? 1 : 0);
    } else if ('()[]{}|^$.+'.includes(c)) {
      return undefined; // path-to-regexp escapes or writes these itself: a RegExp of the app's own
    } else {
      out += c;
    }
  }
  if (out === '') return '/';
  return out.startsWith('/') || out === '*' ? out : undefined;
}

/** Joins a mount's pattern and a pattern inside it: `/t/:tenant` + `/login`; `/` adds nothing. */
export function joinPatterns(prefix: string, pattern: string): string {
  if (pattern === '/' || pattern === '') return prefix === '' ? '/' : prefix;
  return prefix === '' || prefix === '/' ? pattern : `${prefix}${pattern}`;
}

/**
 * Which of a layer's patterns matched `text` (the text Express 4 and router < 2.3 leave in
 * `layer.path`), or undefined when none can be told apart.
 */
export function chosen(
  patterns: readonly string[],
  text: string | undefined,
  ignoreCase: boolean,
): string | undefined {
  if (text === undefined) return undefined;
  for (const pattern of patterns) if (patternMatches(pattern, text, ignoreCase)) return pattern;
  return undefined;
}

const compiled = new Map<string, RegExp>();
function patternMatches(pattern: string, text: string, ignoreCase: boolean): boolean {
  const key = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let re = compiled.get(key);
  if (re === undefined) {
    let source = '^';
    for (const segment of pattern.split('/').slice(1)) {
      if (segment.startsWith(':') || segment.startsWith('*') || segment.startsWith('{'))
        source += '(?:/[^/]*)?';
      else source += `/${segment.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')}`;
    }
    re = new RegExp(`${source}/?$`, ignoreCase ? 'i' : '');
    if (compiled.size < 1000) compiled.set(key, re);
  }
  return re.test(text);
}
