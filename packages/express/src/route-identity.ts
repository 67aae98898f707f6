/**
 * The route Express chose, read from its own router as it dispatches: each layer of the app's
 * router tree (routes, routers mounted with `app.use(path, router)`, handlers mounted with
 * `app.use(path, fn)`) is wrapped once, so that when Express enters it the request learns the
 * layer's pattern. The full pattern of a route is the patterns of the routers it is mounted in,
 * then its own: `/t/:tenant` + `/login`, whatever text matched them (`/T/acme/login/`).
 *
 * Express 5 (router 2) keeps each layer's pattern (`rawPath`); Express 4 keeps only the RegExp
 * path-to-regexp 0.1 built from it, which is read back here (its output has one shape). A layer
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
  /** The text the layer matched, set by Express just before it calls the layer. */
  path?: string;
}

/** A router (Express 4's `app._router` and routers, Express 5's `app.router` and routers). */
export interface Router {
  stack: Layer[];
  caseSensitive?: boolean;
  strict?: boolean;
}

/** A layer's pattern: one or more pattern texts, or `undefined` for a RegExp of the app's own. */
export type Patterns = readonly string[] | undefined;

/**
 * The patterns of a layer as declared. Express 5 keeps them; Express 4's are read back from
 * path-to-regexp 0.1's output, whose shape is fixed: `^\/t(?:\/([^/]+?))\/?(?=\/|$)`.
 */
export function patternsOf(layer: Layer): Patterns {
  if (layer.route !== undefined) return asPatterns(layer.route.path);
  if ('rawPath' in layer) return asPatterns(layer.rawPath);
  const re = layer.regexp;
  if (re === undefined) return undefined;
  if (re.fast_slash === true) return ['/'];
  if (re.fast_star === true) return ['/*'];
  const keys = [...(layer.keys ?? [])];
  const out: string[] = [];
  for (const branch of re.source.split('|')) {
    const text = readBack(branch, keys);
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

/** One branch of a path-to-regexp 0.1 RegExp back to its pattern, or undefined for another RegExp. */
function readBack(
  branch: string,
  keys: Array<{ name: string | number; optional?: boolean }>,
): string | undefined {
  let text = branch.startsWith('^') ? branch.slice(1) : branch;
  for (const tail of ['\\/?(?=\\/|$)', '\\/?$']) {
    if (text.endsWith(tail)) {
      text = text.slice(0, -tail.length);
      break;
    }
  }
  text = text
    .replace(/\(\?:\\\/\(\[\^\/\]\+\?\)\)\?/g, () => `/:${String(keys.shift()?.name)}?`)
    .replace(/\(\?:\\\/\(\[\^\/\]\+\?\)\)/g, () => `/:${String(keys.shift()?.name)}`)
    .replace(/\\\/\(\.\*\)/g, () => {
      keys.shift();
      return '/*';
    })
    .replace(/\\\//g, '/')
    .replace(/\\\./g, '.')
    .replace(/\\-/g, '-');
  if (text === '') return '/';
  // Anything left that is not path text was a RegExp of the app's own.
  return /^[/A-Za-z0-9_.~:%*?@!$&'+,;=-]*$/.test(text) && text.startsWith('/') ? text : undefined;
}

/** Joins a mount's pattern and a pattern inside it: `/t/:tenant` + `/login`; `/` adds nothing. */
export function joinPatterns(prefix: string, pattern: string): string {
  if (pattern === '/' || pattern === '') return prefix === '' ? '/' : prefix;
  return prefix === '/' ? pattern : `${prefix}${pattern}`;
}

/** Which of a layer's patterns matched `text` (the text Express matched), the first when unsure. */
export function chosen(patterns: readonly string[], text: string | undefined, ignoreCase: boolean): string {
  if (patterns.length === 1 || text === undefined) return patterns[0] as string;
  for (const pattern of patterns) if (patternMatches(pattern, text, ignoreCase)) return pattern;
  return patterns[0] as string;
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
