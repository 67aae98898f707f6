import { type IniSection, type IniSections, interpolate, mergeIni, parseIni } from './ini.js';

/** A filter.d filter as fail2ban reads it: its includes merged, its variables ready to expand. */
export interface LoadedFilter {
  readonly name: string;
  /** The failregex lines as written (one per line). */
  readonly failregex: readonly string[];
  readonly ignoreregex: readonly string[];
  readonly prefregex: string | undefined;
  /** Included files that are not in filter.d. */
  readonly missing: readonly string[];
  /** Expands `%(var)s` and `<var>` tags (not `<HOST>`), then `%%`. */
  expand(regex: string): string;
}

/** The tags fail2ban itself fills in when it matches: never variables. */
const FAIL2BAN_TAGS = /^(?:HOST|ADDR|IP4|IP6|CIDR|SUBNET|DNS|SKIPLINES|F-[\w-]+)$/;

function lines(value: string | undefined): string[] {
  return (value ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function stem(file: string): string {
  return file.replace(/\.(conf|local)$/, '');
}

/**
 * Parses a filter's `name[key=value, key2="value"]` arguments (as a jail's `filter =` gives them).
 */
export function parseFilterSpec(spec: string): { name: string; args: Map<string, string> } {
  const m = /^\s*([^[\s]+)\s*(?:\[(.*)\])?\s*$/s.exec(spec);
  const args = new Map<string, string>();
  if (!m) return { name: spec.trim(), args };
  for (const part of (m[2] ?? '').matchAll(/([\w.-]+)\s*=\s*("[^"]*"|'[^']*'|[^,]*)/g)) {
    args.set((part[1] as string).toLowerCase(), (part[2] as string).trim().replace(/^(["'])(.*)\1$/, '$2'));
  }
  return { name: m[1] as string, args };
}

/**
 * Loads a filter from the filter.d texts (`name` → the `.conf` text followed by its `.local`),
 * with `[INCLUDES] before`/`after` files merged around it, as fail2ban does.
 */
export function loadFilter(
  name: string,
  filters: Readonly<Record<string, string>>,
  args: ReadonlyMap<string, string> = new Map(),
): LoadedFilter | undefined {
  const own = filters[name];
  if (own === undefined) return undefined;
  const missing: string[] = [];
  const seen = new Set<string>();
  const read = (file: string): IniSections => {
    const merged: IniSections = new Map();
    if (seen.has(file)) return merged;
    seen.add(file);
    const text = filters[file];
    if (text === undefined) {
      missing.push(file);
      return merged;
    }
    const sections = parseIni(text);
    const includes = sections.get('INCLUDES');
    for (const before of (includes?.get('before') ?? '').split(/\s+/).filter(Boolean))
      mergeIni(merged, read(stem(before)));
    mergeIni(merged, sections);
    for (const after of (includes?.get('after') ?? '').split(/\s+/).filter(Boolean)) {
      // A missing .local "after" file is normal: fail2ban reads it only when present.
      if (filters[stem(after)] !== undefined) mergeIni(merged, read(stem(after)));
    }
    return merged;
  };
  const sections = read(name);
  const definition: IniSection = sections.get('Definition') ?? new Map();
  const defaults: IniSection = sections.get('DEFAULT') ?? new Map();
  const init: IniSection = sections.get('Init') ?? new Map();

  const lookupVar = (key: string, from: readonly IniSection[]): string | undefined => {
    const slash = key.indexOf('/');
    if (slash !== -1) {
      const section = sections.get(key.slice(0, slash));
      return section?.get(key.slice(slash + 1)) ?? undefined;
    }
    for (const section of from) {
      const value = section.get(key);
      if (value !== undefined) return value;
    }
    return undefined;
  };
  const percent = (key: string) => lookupVar(key, [definition, defaults]);
  const tagSources = [args as IniSection, init, definition, defaults];
  const expand = (regex: string): string => {
    let text = regex;
    for (let depth = 0; depth < 12; depth++) {
      let next = interpolate(text, percent);
      // <name> tags from [Init], [Definition] and the jail's arguments; <HOST> and kin are not variables.
      next = next.replace(/<([A-Za-z_][\w.-]*(?:\/[\w.-]+)?)>/g, (whole, key: string) => {
        if (FAIL2BAN_TAGS.test(key)) return whole;
        const value = lookupVar(key.toLowerCase(), tagSources);
        return value === undefined ? whole : value;
      });
      if (next === text) break;
      text = next;
    }
    return text.replace(/%%/g, '%');
  };
  return {
    name,
    failregex: lines(definition.get('failregex')),
    ignoreregex: lines(definition.get('ignoreregex')),
    prefregex: definition.get('prefregex'),
    missing,
    expand,
  };
}
