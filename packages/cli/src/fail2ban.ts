import { formatCidr, formatDuration, parseCidr, parseDuration } from '@jailkeeper/core';

/** One section of an INI file, its keys lower-cased, continuation lines joined. */
export type IniSections = Map<string, Map<string, string>>;

/**
 * Parses fail2ban's INI dialect: `[section]`, `key = value`, indented continuation lines, and
 * comments (`#` or `;` at the start of a line, or after whitespace).
 */
export function parseIni(text: string): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
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
      current.set(lastKey, `${current.get(lastKey) ?? ''}\n${line.trim()}`);
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

/** Expands `%(name)s` from the section, then [DEFAULT]; unknown names stay as written. */
function interpolate(
  value: string,
  section: Map<string, string>,
  defaults: Map<string, string> | undefined,
  depth = 0,
): string {
  if (depth > 10) return value;
  return value.replace(/%\(([^)]+)\)s/g, (whole, name: string) => {
    const key = name.toLowerCase();
    const found = section.get(key) ?? defaults?.get(key);
    return found === undefined ? whole : interpolate(found, section, defaults, depth + 1);
  });
}

/** What fail2ban's common HTTP filters count, as statuses jailkeeper sees in the app. */
const KNOWN_FILTERS: Record<string, { statuses: number[]; note?: string }> = {
  'nginx-http-auth': { statuses: [401], note: 'HTTP basic-auth failures: the app answers 401' },
  'apache-auth': { statuses: [401], note: 'authentication failures: the app answers 401' },
  'nginx-forbidden': { statuses: [403] },
  'nginx-404': { statuses: [403, 404] },
  'nginx-4xx': { statuses: [400, 403, 404] },
  'nginx-botsearch': {
    statuses: [404],
    note: 'fail2ban limits it to known scanner paths; jailkeeper counts every 404 (add `paths` to narrow it)',
  },
  'nginx-limit-req': { statuses: [429], note: "nginx's limit_req: the app's rate limiter answers 429" },
  'apache-excessive': { statuses: [429] },
};

/** fail2ban jails that do not watch HTTP responses: they stay in fail2ban. */
const NOT_HTTP =
  /^(sshd|ssh|dropbear|ufw|postfix|dovecot|courier|vsftpd|proftpd|pure-ftpd|named|asterisk|mysqld|mongodb|.*-sslerror|.*-ddos|selinux.*|pam-generic|portsentry)/;

export interface ImportResult {
  /** The jailkeeper options, ready for JSON. */
  config: {
    jails: Record<string, Record<string, unknown>>;
    ignoreIp?: string[];
    recidive?: Record<string, unknown>;
  };
  /** What could not be translated, and why; one line each. */
  notes: string[];
}

function time(value: string, what: string, notes: string[]): string | number | undefined {
  const trimmed = value.trim();
  if (trimmed === '-1') return -1;
  const ms = parseDuration(trimmed);
  if (ms === undefined || ms <= 0) {
    notes.push(`${what} = ${trimmed}: not a duration jailkeeper reads; left out (the default applies).`);
    return undefined;
  }
  return formatDuration(ms);
}

/** Reads statuses, methods and a path prefix from a failregex over an access-log line. */
export function translateFailregex(
  regex: string,
  vars: Map<string, string>,
): {
  statuses: number[];
  methods?: string[];
  paths?: string[];
} {
  const expanded = regex.replace(/%\(([^)]+)\)s/g, (w, n: string) => vars.get(n.toLowerCase()) ?? w);
  const afterRequest = expanded.slice(expanded.lastIndexOf('"') + 1);
  const statuses = [...new Set([...afterRequest.matchAll(/\b([45]\d\d)\b/g)].map((m) => Number(m[1])))];
  const methodGroup =
    /"\(?((?:GET|POST|HEAD|PUT|DELETE|PATCH|OPTIONS)(?:\|(?:GET|POST|HEAD|PUT|DELETE|PATCH|OPTIONS))*)\)?/.exec(
      expanded,
    );
  const methods = methodGroup ? (methodGroup[1] as string).split('|') : undefined;
  const path = /"\(?(?:GET|POST|HEAD|PUT|DELETE|PATCH|OPTIONS)[^ /]*\s+(\/[A-Za-z0-9_\-/]+)/.exec(expanded);
  const out: { statuses: number[]; methods?: string[]; paths?: string[] } = { statuses };
  if (methods && !(methods.includes('GET') && methods.includes('POST') && methods.includes('HEAD')))
    out.methods = methods;
  if (path) {
    const prefix = (path[1] as string).replace(/\/$/, '');
    out.paths = [prefix, `${prefix}/**`];
  }
  return out;
}

/**
 * Translates fail2ban jails into jailkeeper options: maxretry, findtime, bantime, ignoreip,
 * bantime.increment and its settings, recidive, and the statuses of common nginx and Apache
 * filters (or of a failregex, from `filters`: the text of filter.d files by filter name).
 * Whatever cannot be translated is listed in `notes`, never silently dropped.
 */
export function importFail2ban(text: string, filters: Record<string, string> = {}): ImportResult {
  const sections = parseIni(text);
  const defaults = sections.get('DEFAULT');
  const notes: string[] = [];
  const jails: Record<string, Record<string, unknown>> = {};
  const ignoreIp = new Set<string>();
  let recidive: Record<string, unknown> | undefined;
  const pardonTargets = new Map<string, string>();

  const addIgnore = (value: string, where: string) => {
    for (const entry of value.split(/[\s,]+/).filter(Boolean)) {
      const cidr = parseCidr(entry);
      if (typeof cidr !== 'string') {
        ignoreIp.add(formatCidr(cidr));
        continue;
      }
      const masked = /^(.+)\/(\d+)$/.exec(entry);
      if (masked && /host bits/.test(cidr)) {
        const network = /did you mean ([^?]+)\?/.exec(cidr)?.[1];
        if (network) {
          ignoreIp.add(network);
          notes.push(`${where}: ignoreip ${entry} has host bits set; written as ${network}.`);
          continue;
        }
      }
      notes.push(
        `${where}: ignoreip ${entry} is not an address or a CIDR (fail2ban resolves hostnames and prefixes); left out: add its addresses or a CIDR by hand.`,
      );
    }
  };
  if (defaults?.has('ignoreip'))
    addIgnore(interpolate(defaults.get('ignoreip') as string, defaults, undefined), '[DEFAULT]');
  const defaultAction = defaults?.get('action');
  if (defaultAction !== undefined && /action_m|mail|sendmail|mta/.test(defaultAction)) {
    notes.push(
      `[DEFAULT] action = ${defaultAction}: mail actions become createWebhookNotifier() (a JSON POST, Slack/Mattermost compatible) in the app; not part of the jail options.`,
    );
  }

  for (const [name, section] of sections) {
    if (name === 'DEFAULT' || name === 'INCLUDES' || name === 'Definition' || name === 'Init') continue;
    const get = (key: string): string | undefined => {
      const value = section.get(key) ?? defaults?.get(key);
      return value === undefined ? undefined : interpolate(value, section, defaults);
    };
    const where = `[${name}]`;
    const action = section.get('action');
    const whitelist =
      action === undefined ? undefined : /ignoreip\[\s*name\s*=\s*([A-Za-z0-9_.-]+)/.exec(action);
    if (whitelist) {
      pardonTargets.set(whitelist[1] as string, name);
      continue;
    }
    if (name === 'recidive') {
      recidive = {};
      const maxretry = get('maxretry');
      if (maxretry !== undefined) recidive.maxRetry = Number(maxretry);
      for (const [key, option] of [
        ['findtime', 'findTime'],
        ['bantime', 'banTime'],
      ] as const) {
        const v = section.get(key);
        if (v !== undefined) {
          const t = time(interpolate(v, section, defaults), `${where} ${key}`, notes);
          if (t !== undefined) recidive[option] = t;
        }
      }
      continue;
    }
    const filterName = (get('filter') ?? name).split('[')[0]?.trim() ?? name;
    if (NOT_HTTP.test(name) || NOT_HTTP.test(filterName)) {
      notes.push(`${where}: watches ${filterName} (not HTTP responses of this app); keep it in fail2ban.`);
      continue;
    }
    const jail: Record<string, unknown> = {};
    const known = KNOWN_FILTERS[filterName];
    const filterText = filters[filterName];
    if (filterText !== undefined) {
      const def = parseIni(filterText).get('Definition') ?? new Map<string, string>();
      const failregex = def.get('failregex') ?? '';
      const firstLine = failregex.split('\n')[0] ?? '';
      const translated = translateFailregex(firstLine, def);
      if (translated.statuses.length === 0) {
        notes.push(
          `${where}: the failregex of ${filterName} names no status; left out: set statuses by hand.`,
        );
        continue;
      }
      Object.assign(jail, translated);
      if (failregex.includes('\n'))
        notes.push(`${where}: ${filterName} has several failregex lines; only the first was translated.`);
      if ((def.get('ignoreregex') ?? '').trim() !== '') {
        notes.push(
          `${where}: ignoreregex "${def.get('ignoreregex')}" of ${filterName}: use \`exempt\` with the route (e.g. ['/ws']).`,
        );
      }
    } else if (known) {
      jail.statuses = known.statuses;
      if (known.note) notes.push(`${where}: ${filterName}: ${known.note}.`);
    } else if (/badbots/.test(filterName)) {
      notes.push(
        `${where}: ${filterName} matches a list of bot user agents; left out: give the jail \`userAgents\` with your list.`,
      );
      continue;
    } else {
      notes.push(
        `${where}: filter ${filterName} is unknown here; left out: pass its filter.d file (--filters <dir>) or set statuses by hand.`,
      );
      continue;
    }
    const enabled = get('enabled');
    if (enabled === undefined || !/^(true|yes|1|on)$/i.test(enabled)) {
      jail.enabled = false;
      notes.push(`${where}: not enabled in fail2ban; kept with enabled: false.`);
    }
    const maxretry = get('maxretry');
    if (maxretry !== undefined) {
      const n = Number(maxretry);
      if (Number.isInteger(n) && n > 0) jail.maxRetry = n;
      else notes.push(`${where}: maxretry = ${maxretry} is not a positive integer; left out.`);
    }
    for (const [key, option] of [
      ['findtime', 'findTime'],
      ['bantime', 'banTime'],
    ] as const) {
      const v = get(key);
      if (v !== undefined) {
        const t = time(v, `${where} ${key}`, notes);
        if (t !== undefined) jail[option] = t;
      }
    }
    if (/^(true|yes|1|on)$/i.test(get('bantime.increment') ?? '')) {
      const inc: Record<string, unknown> = {};
      const factor = get('bantime.factor');
      if (factor !== undefined) inc.factor = Number(factor);
      const multipliers = get('bantime.multipliers');
      if (multipliers !== undefined && multipliers.trim() !== '')
        inc.multipliers = multipliers.trim().split(/\s+/).map(Number);
      const maxtime = get('bantime.maxtime');
      if (maxtime !== undefined) {
        const t = time(maxtime, `${where} bantime.maxtime`, notes);
        if (t !== undefined) inc.maxTime = t;
      }
      const rnd = get('bantime.rndtime');
      if (rnd !== undefined) {
        const t = time(rnd, `${where} bantime.rndtime`, notes);
        if (t !== undefined) inc.jitter = t;
      }
      if (/^(true|yes|1|on)$/i.test(get('bantime.overalljails') ?? '')) inc.overallJails = true;
      if (get('bantime.formula') !== undefined)
        notes.push(`${where}: bantime.formula is not translated; factor and multipliers are.`);
      jail.banTimeIncrement = Object.keys(inc).length === 0 ? true : inc;
    }
    if (section.has('ignoreip')) {
      addIgnore(get('ignoreip') as string, where);
      notes.push(
        `${where}: a jail's own ignoreip becomes the global ignoreIp (jailkeeper's ignore list covers every jail).`,
      );
    }
    const port = section.get('port');
    if (port !== undefined && !/^(http|https|80|443|http,\s*https)$/.test(port)) {
      notes.push(
        `${where}: port = ${port}: jailkeeper refuses banned clients in the app (add jk.guard() for raw connections), not on other ports.`,
      );
    }
    jails[name] = jail;
  }
  for (const [target, source] of pardonTargets) {
    const jail = jails[target];
    if (jail === undefined) {
      notes.push(`[${source}] whitelists clients of ${target}, which was not translated; left out.`);
      continue;
    }
    jail.pardon = { statuses: [200] };
    notes.push(
      `[${source}]: the whitelist-after-login jail becomes \`pardon\` on ${target}: after a 200 the threshold rises (4 × maxRetry for 30d) instead of immunity, so a stolen session cannot brute-force freely.`,
    );
  }
  const config: ImportResult['config'] = { jails };
  if (ignoreIp.size > 0) config.ignoreIp = [...ignoreIp];
  if (recidive) config.recidive = recidive;
  if (Object.keys(jails).length === 0)
    notes.push('No jail could be translated: the jailkeeper config needs at least one.');
  return { config, notes };
}
