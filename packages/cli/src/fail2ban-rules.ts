import { type LoadedFilter, loadFilter } from './fail2ban-filter.js';
import { STOCK_FILTERS, type StockFilter } from './fail2ban-stock.js';
import { type TranslatedRule, translateRegex } from './fail2ban-translate.js';
import { failregexError } from './regex-check.js';

/**
 * Which log a line that is not an access-log line reads. A `%(__prefix_line)s` line is syslog's
 * (common.conf), whatever program wrote it: nginx is named only for its own error-log marks.
 */
function errorLogReason(raw: string, expanded: string, loaded: LoadedFilter): string {
  if (raw.includes('_apache_error_client') || /\[client <(?:HOST|ADDR)>/.test(expanded))
    return "it reads Apache's error log, which the app never sees";
  if (/client\\?: <(?:HOST|ADDR)>|\\d\+#\\d\+/.test(expanded))
    return "it reads nginx's error log, which the app never sees";
  if (raw.includes('__prefix_line')) {
    const daemon = loaded
      .expand('%(_daemon)s')
      .trim()
      .replace(/^\(\?:(.*)\)$/, '$1')
      .split('|')
      .join(' or ');
    const by = daemon === '' || /[%\\()[\]*+?]/.test(daemon) ? '' : ` written by ${daemon}`;
    return `it reads syslog-style lines${by}, which the app never sees`;
  }
  return 'it does not start with the client address (<HOST>) of an access-log line, so it reads another log than the access log';
}

/**
 * What a line asks of the access log's user field (`<HOST> - user [time]`), which an app's
 * response does not carry: traefik-auth's default mode counts a 401 only when a user name was sent
 * (a browser's first, credential-less request to a basic-auth page is answered 401 too).
 */
function userField(expanded: string): string | undefined {
  const m = /^\^?<(?:HOST|ADDR)> \\?- (\(\?!-[ \\]|-[ \\])/.exec(expanded);
  if (m === null) return undefined;
  if ((m[1] as string).startsWith('-'))
    return 'it counts only requests that sent no user name (the log\'s user field is "-"); an app\'s response does not say whether credentials were sent, so every such response counts here. Count only credential-less requests in the app with fail() if that matters';
  return "it counts only requests that sent a user name (the log's user field is not \"-\"): a browser's first request to a basic-auth page, sent without credentials and answered 401, is not counted by fail2ban. An app's response does not say whether credentials were sent, so every such response counts here: raise maxRetry, or call fail() in the app only where credentials were refused";
}

function describeRules(rules: readonly TranslatedRule[]): string {
  return rules
    .map((r) =>
      [
        r.statuses && `statuses ${r.statuses.join(', ')}`,
        r.methods && `methods ${r.methods.join(', ')}`,
        r.paths && `paths ${r.paths.slice(0, 4).join(', ')}${r.paths.length > 4 ? ', …' : ''}`,
        r.userAgents && `user agents ${r.userAgents.slice(0, 4).join(', ')}`,
      ]
        .filter(Boolean)
        .join('; '),
    )
    .join(' / ');
}

/** Merges rules that differ only in their paths, or only in their user agents, into one jail each. */
export function groupRules(rules: readonly TranslatedRule[]): TranslatedRule[] {
  const groups = new Map<string, TranslatedRule>();
  for (const rule of rules) {
    const kind =
      rule.paths && !rule.userAgents
        ? 'paths'
        : rule.userAgents && !rule.paths
          ? 'agents'
          : `other ${JSON.stringify(rule)}`;
    const key = JSON.stringify([
      rule.statuses ? [...rule.statuses].sort() : null,
      rule.methods ? [...rule.methods].sort() : null,
      kind,
    ]);
    const group = groups.get(key);
    if (group === undefined) {
      groups.set(key, {
        ...rule,
        ...(rule.paths ? { paths: [...rule.paths] } : {}),
        ...(rule.userAgents ? { userAgents: [...rule.userAgents] } : {}),
      });
      continue;
    }
    for (const p of rule.paths ?? []) if (!group.paths?.includes(p)) group.paths?.push(p);
    for (const a of rule.userAgents ?? []) if (!group.userAgents?.includes(a)) group.userAgents?.push(a);
  }
  return [...groups.values()];
}

/** What a jail's filter counts, as jailkeeper rules, and the notes that say how. */
export interface FilterRules {
  readonly rules: TranslatedRule[];
  readonly loaded: LoadedFilter | undefined;
  readonly stock: StockFilter | undefined;
  /** Notes, line by line; when `rules` is empty, the first says why the jail is left out. */
  readonly notes: string[];
  /** The failregex lines that do not compile (fail2ban refuses the filter): why, one each. */
  readonly broken: string[];
}

/**
 * Translates the failregex lines of a jail's filter (and the jail's own), line by line; where no
 * line means anything to an app, the built-in knowledge of the stock filter is used.
 */
export function filterRules(
  where: string,
  filterName: string,
  args: ReadonlyMap<string, string>,
  filters: Readonly<Record<string, string>>,
  jailFailregex: readonly string[],
): FilterRules {
  const notes: string[] = [];
  const loaded = loadFilter(filterName, filters, args);
  const stock = STOCK_FILTERS[filterName];
  // Notes by text, with the failregex lines they apply to.
  const byNote = new Map<string, number[]>();
  const lineNote = (line: number, text: string) => {
    const list = byNote.get(text) ?? [];
    if (!list.includes(line)) list.push(line);
    byNote.set(text, list);
  };
  let rules: TranslatedRule[] = [];
  const broken: string[] = [];
  if (loaded) {
    const prefregex = loaded.prefregex === undefined ? undefined : loaded.expand(loaded.prefregex);
    // A prefregex over the error log puts every failregex line there.
    const pref = prefregex === undefined ? undefined : translateRegex(prefregex);
    const prefReason =
      pref !== undefined && !pref.ok && pref.reason === 'not-access-log'
        ? errorLogReason(loaded.prefregex ?? '', prefregex ?? '', loaded)
        : undefined;
    [...loaded.failregex, ...jailFailregex].forEach((raw, i) => {
      const line = i + 1;
      if (prefReason !== undefined) {
        lineNote(line, `through its prefregex, ${prefReason}; not translated`);
        return;
      }
      const expanded = loaded.expand(raw);
      const error = failregexError(expanded);
      if (error !== undefined) {
        broken.push(`${filterName} failregex line ${line} does not compile (${error}): ${raw}`);
        return;
      }
      const unresolved = /%\(([^)]+)\)s/.exec(expanded);
      if (unresolved) {
        const missing = loaded.missing.length > 0 ? ` (not given: ${loaded.missing.join(', ')})` : '';
        lineNote(
          line,
          `it uses %(${unresolved[1]})s, which no filter file defines${missing}; not translated`,
        );
        return;
      }
      const translated = translateRegex(expanded);
      if (!translated.ok) {
        const reason =
          translated.reason === 'not-access-log' ? errorLogReason(raw, expanded, loaded) : translated.reason;
        lineNote(line, `${reason}; not translated`);
        return;
      }
      rules.push(...translated.rules);
      for (const note of translated.notes) lineNote(line, note);
      const user = userField(expanded);
      if (user !== undefined) lineNote(line, user);
    });
  }
  const lineNotes = [...byNote].map(
    ([text, lines]) =>
      `${where} ${filterName} failregex line${lines.length > 1 ? 's' : ''} ${lines.join(', ')}: ${text}.`,
  );
  if (rules.length === 0 && stock?.rules) {
    rules = stock.rules.map((r) => ({ ...r }));
    notes.push(
      `${where}: ${filterName}${loaded ? ' reads no access-log line an app could see' : ''}: ${stock.note ?? `built-in, ${describeRules(rules)}`}.`,
    );
  } else if (rules.length === 0) {
    if (stock?.keep) notes.push(`${where}: ${filterName}: ${stock.keep}; keep it in fail2ban.`);
    else if (loaded)
      notes.push(`${where}: no failregex line of ${filterName} could be translated; left out.`);
    else if (stock?.note) notes.push(`${where}: ${filterName}: ${stock.note}; left out.`);
    else
      notes.push(
        `${where}: filter ${filterName} is unknown here; left out: pass its filter.d file (--filters <dir>)${/badbots/.test(filterName) ? ' so that its list of bots becomes userAgents' : ''} or set statuses by hand.`,
      );
  }
  notes.push(...lineNotes);
  return { rules, loaded, stock, notes, broken };
}

/**
 * Translates ignoreregex lines (the filter's, then the jail's) into `exempt` routes; what is not a
 * route is said, line by line.
 */
export function exemptRoutes(
  where: string,
  lines: ReadonlyArray<{ raw: string; from: string }>,
  expand: (raw: string) => string,
  notes: string[],
): string[] {
  const exempt: string[] = [];
  for (const { raw, from } of lines) {
    const translated = translateRegex(expand(raw), { requireHost: false });
    const paths = translated.ok ? translated.rules.map((r) => r.paths) : [];
    if (
      translated.ok &&
      paths.every((p) => p !== undefined) &&
      translated.rules.every((r) => !r.userAgents)
    ) {
      for (const p of paths.flat() as string[]) if (!exempt.includes(p)) exempt.push(p);
      const narrowed = translated.rules.some((r) => r.statuses || r.methods);
      notes.push(
        `${where}: ignoreregex "${raw}" of ${from} becomes exempt ${JSON.stringify(paths.flat())}${narrowed ? ' (for every status and method: jailkeeper exempts routes)' : ''}.`,
      );
    } else {
      const why = translated.ok
        ? paths.some((p) => p !== undefined)
          ? 'it asks for a user agent as well as a route; jailkeeper exempts routes only'
          : 'it names no route; jailkeeper exempts routes only'
        : translated.reason === 'not-access-log'
          ? 'it does not match an access-log request'
          : translated.reason;
      notes.push(`${where}: ignoreregex "${raw}" of ${from} cannot be translated (${why}); left out.`);
    }
  }
  return exempt;
}
