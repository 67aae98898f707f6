/** One section of an INI file: its keys lower-cased, continuation lines joined with `\n`. */
export type IniSection = Map<string, string>;
/** The sections of one or more INI files, by name. */
export type IniSections = Map<string, IniSection>;

/**
 * Parses fail2ban's INI dialect: `[section]`, `key = value` (or `key: value`), indented
 * continuation lines, and comments (`#` or `;` at the start of a line, or after whitespace).
 */
export function parseIni(text: string): IniSections {
  const sections: IniSections = new Map();
  let current: IniSection | undefined;
  let lastKey: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*[#;]/.test(raw) || raw.trim() === '') {
      lastKey = undefined;
      continue;
    }
    const line = raw.replace(/\s[#;].*$/, '');
    const section = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (section) {
      const name = (section[1] as string).trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(line) && lastKey !== undefined && current) {
      const joined = `${current.get(lastKey) ?? ''}\n${line.trim()}`;
      current.set(lastKey, joined.startsWith('\n') ? joined.slice(1) : joined);
      continue;
    }
    const kv = /^\s*([^=:\s][^=:]*?)\s*[=:]\s*(.*)$/.exec(line);
    if (kv && current) {
      lastKey = (kv[1] as string).toLowerCase();
      current.set(lastKey, (kv[2] as string).trim());
    }
  }
  return sections;
}

/** Adds `source`'s keys to `target`, section by section: a later file overrides, as in fail2ban. */
export function mergeIni(target: IniSections, source: IniSections): IniSections {
  for (const [name, keys] of source) {
    const into = target.get(name) ?? new Map<string, string>();
    for (const [key, value] of keys) into.set(key, value);
    target.set(name, into);
  }
  return target;
}

/**
 * fail2ban's interpolation: `%(name)s` (or `%(section/name)s`) is replaced by what `lookup`
 * gives, recursively; unknown names stay as written; `%%` is a literal `%`.
 */
export function interpolate(value: string, lookup: (name: string) => string | undefined): string {
  let text = value;
  for (let depth = 0; depth < 12; depth++) {
    const next = text.replace(
      /%\(([^()%]+)\)s/g,
      (whole, name: string) => lookup(name.toLowerCase()) ?? whole,
    );
    if (next === text) break;
    text = next;
  }
  return text;
}
