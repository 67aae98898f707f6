import { invalid } from '../errors.js';

/**
 * A path rule: an exact path (`'/login'`), a glob (`'/api/*'` matches one segment, `'/static/**'`
 * any depth), or a RegExp (without the `g` or `y` flag, whose `lastIndex` would make matching stateful).
 */
export type PathPattern = string | RegExp;

/** A compiled list of path rules: exact paths in a Set, the rest as anchored RegExps. */
export interface PathMatcher {
  readonly isEmpty: boolean;
  matches(path: string): boolean;
  /** The rules as written, for status and docs. */
  readonly source: readonly string[];
}

const EMPTY: PathMatcher = Object.freeze({ isEmpty: true, matches: () => false, source: Object.freeze([]) });

function globToRegExp(glob: string): RegExp {
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
    } else {
      out += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`${out}$`);
}

/** Compiles path rules once at setup. `path` names the option in errors. */
export function compilePaths(path: string, value: unknown): PathMatcher {
  if (value === undefined) return EMPTY;
  if (!Array.isArray(value)) invalid(path, 'an array of paths ("/login", "/api/*") or RegExps', value);
  if (value.length === 0) return EMPTY;
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  const source: string[] = [];
  value.forEach((entry: unknown, i) => {
    const at = `${path}[${i}]`;
    if (entry instanceof RegExp) {
      if (entry.global || entry.sticky)
        invalid(at, 'a RegExp without the g or y flag (they make test() stateful)', entry);
      patterns.push(entry);
      source.push(String(entry));
    } else if (typeof entry === 'string') {
      if (!entry.startsWith('/')) invalid(at, 'a path starting with "/"', entry);
      if (entry.includes('*')) patterns.push(globToRegExp(entry));
      else exact.add(entry);
      source.push(entry);
    } else {
      invalid(at, 'a path string or a RegExp', entry);
    }
  });
  const list = Object.freeze(patterns);
  return Object.freeze({
    isEmpty: false,
    source: Object.freeze(source),
    matches(target: string): boolean {
      if (exact.has(target)) return true;
      for (const re of list) if (re.test(target)) return true;
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
