import { invalid } from '../errors.js';

/**
 * A path rule: an exact path (`'/login'`), a glob (`'/api/*'` matches one segment, `'/static/**'`
 * any depth), or a RegExp (without the `g` or `y` flag, whose `lastIndex` would make matching stateful).
 */
export type PathPattern = string | RegExp;

/**
 * A compiled list of path rules. Rules name routes: they are matched against the pattern the
 * router matched (`matchesRoute`), canonical (see {@link canonicalRoute}); without router
 * information (log replay, a request no route matched), against the request path (`matchesPath`),
 * where a `:param` segment of a rule matches any one segment.
 */
export interface PathMatcher {
  readonly isEmpty: boolean;
  /** `route`: a route pattern; `ignoreCase`: the router matches paths case-insensitively. */
  matchesRoute(route: string, ignoreCase: boolean): boolean;
  /** `path`: a request path; `ignoreCase`: the router matches paths case-insensitively. */
  matchesPath(path: string, ignoreCase: boolean): boolean;
  /** The rules as written, for status and docs. */
  readonly source: readonly string[];
}

const PARAM = /:[A-Za-z0-9_$]+/g;
const SLASHES = /\/{2,}/g;

/**
 * A route pattern in the one form rules are compared with: repeated slashes collapsed, the
 * trailing slash dropped (but for `/`), and every `:name` parameter written `:` (the name is
 * the route's own business: `/users/:id` and `/users/:userId` are one route shape), without the
 * expression a router may give it (`/rx/:id(^\\d+)` is `/rx/:`).
 */
export function canonicalRoute(pattern: string): string {
  let out = pattern.includes('//') ? pattern.replace(SLASHES, '/') : pattern;
  if (out.length > 1 && out.endsWith('/')) out = out.slice(0, -1);
  if (!out.includes(':')) return out;
  if (out.includes('(')) out = withoutExpressions(out);
  return out.replace(PARAM, ':');
}

/** Drops the `(...)` expression after each `:name` (find-my-way's and path-to-regexp 0.1's syntax). */
function withoutExpressions(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    out += c;
    if (c !== ':') continue;
    let j = i + 1;
    while (j < pattern.length && /[A-Za-z0-9_$]/.test(pattern[j] as string)) j++;
    if (j === i + 1 || pattern[j] !== '(') continue;
    out += pattern.slice(i + 1, j);
    let depth = 0;
    for (; j < pattern.length; j++) {
      const d = pattern[j];
      if (d === '\\') j++;
      else if (d === '(') depth++;
      else if (d === ')' && --depth === 0) break;
    }
    i = j;
  }
  return out;
}

const EMPTY: PathMatcher = Object.freeze({
  isEmpty: true,
  matchesRoute: () => false,
  matchesPath: () => false,
  source: Object.freeze([]),
});

/**
 * A glob (or a canonical route with `:` parameters) as an anchored RegExp: `*` and `:` match one
 * segment, `**` any depth.
 */
function globToRegExp(glob: string, flags: string): RegExp {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else {
        out += '[^/]*';
      }
    } else if (c === ':' && (i === 0 || glob[i - 1] === '/')) {
      out += '[^/]+';
    } else {
      out += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`${out}$`, flags);
}

/** Compiles path rules once at setup. `path` names the option in errors. */
export function compilePaths(path: string, value: unknown): PathMatcher {
  if (value === undefined) return EMPTY;
  if (!Array.isArray(value)) invalid(path, 'an array of paths ("/login", "/api/*") or RegExps', value);
  if (value.length === 0) return EMPTY;
  const exact = new Set<string>();
  const exactFolded = new Set<string>();
  /** Rules matched against route patterns: globs on the canonical form, and the user's RegExps. */
  const routeRules: RegExp[] = [];
  const routeRulesFolded: RegExp[] = [];
  /** Rules matched against request paths: `:param` segments and globs as wildcards. */
  const pathExact = new Set<string>();
  const pathExactFolded = new Set<string>();
  const pathRules: RegExp[] = [];
  const pathRulesFolded: RegExp[] = [];
  const source: string[] = [];
  value.forEach((entry: unknown, i) => {
    const at = `${path}[${i}]`;
    if (entry instanceof RegExp) {
      if (entry.global || entry.sticky)
        invalid(at, 'a RegExp without the g or y flag (they make test() stateful)', entry);
      routeRules.push(entry);
      routeRulesFolded.push(entry.flags.includes('i') ? entry : new RegExp(entry.source, `${entry.flags}i`));
      pathRules.push(entry);
      pathRulesFolded.push(entry.flags.includes('i') ? entry : new RegExp(entry.source, `${entry.flags}i`));
      source.push(String(entry));
    } else if (typeof entry === 'string') {
      if (!entry.startsWith('/')) invalid(at, 'a path starting with "/"', entry);
      const canonical = canonicalRoute(entry);
      if (canonical.includes('*')) {
        routeRules.push(globToRegExp(canonical, ''));
        routeRulesFolded.push(globToRegExp(canonical, 'i'));
      } else {
        exact.add(canonical);
        exactFolded.add(canonical.toLowerCase());
      }
      if (canonical.includes('*') || canonical.includes(':')) {
        pathRules.push(globToRegExp(canonical, ''));
        pathRulesFolded.push(globToRegExp(canonical, 'i'));
      } else {
        pathExact.add(canonical);
        pathExactFolded.add(canonical.toLowerCase());
      }
      source.push(entry);
    } else {
      invalid(at, 'a path string or a RegExp', entry);
    }
  });
  return Object.freeze({
    isEmpty: false,
    source: Object.freeze(source),
    matchesRoute(route: string, ignoreCase: boolean): boolean {
      const canonical = canonicalRoute(route);
      if (ignoreCase) {
        if (exactFolded.has(canonical.toLowerCase())) return true;
        for (const re of routeRulesFolded) if (re.test(canonical)) return true;
        return false;
      }
      if (exact.has(canonical)) return true;
      for (const re of routeRules) if (re.test(canonical)) return true;
      return false;
    },
    matchesPath(requestPath: string, ignoreCase: boolean): boolean {
      // Repeated and trailing slashes as the rules are written: matching more spellings is safe here.
      let canonical = requestPath.includes('//') ? requestPath.replace(SLASHES, '/') : requestPath;
      if (canonical.length > 1 && canonical.endsWith('/')) canonical = canonical.slice(0, -1);
      if (ignoreCase) {
        if (pathExactFolded.has(canonical.toLowerCase())) return true;
        for (const re of pathRulesFolded) if (re.test(canonical)) return true;
        return false;
      }
      if (pathExact.has(canonical)) return true;
      for (const re of pathRules) if (re.test(canonical)) return true;
      return false;
    },
  });
}

/** Compiles user-agent rules: RegExps, or strings matched as case-insensitive substrings. */
export function compileUserAgents(path: string, value: unknown): ((ua: string) => boolean) | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) invalid(path, 'an array of RegExps or strings', value);
  if (value.length === 0) return undefined;
  const patterns = value.map((entry: unknown, i) => {
    const at = `${path}[${i}]`;
    if (entry instanceof RegExp) {
      if (entry.global || entry.sticky)
        invalid(at, 'a RegExp without the g or y flag (they make test() stateful)', entry);
      return entry;
    }
    if (typeof entry === 'string' && entry.length > 0) {
      return new RegExp(entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    }
    return invalid(at, 'a RegExp or a non-empty string', entry);
  });
  return (ua: string) => {
    for (const re of patterns) if (re.test(ua)) return true;
    return false;
  };
}
