import { type ErrorCode, parseDuration } from '@jailkeeper/core';
import { formatCidr, formatDuration, parseCidr } from '@jailkeeper/core/operator';
import { parseFilterSpec } from './fail2ban-filter.js';
import { exemptRoutes, filterRules, groupRules } from './fail2ban-rules.js';
import { type IniSection, type IniSections, interpolate, mergeIni, parseIni } from './ini.js';

export { parseIni } from './ini.js';

/** One file of a fail2ban configuration, in the order fail2ban reads them. */
export interface Fail2banFile {
  /** The file's path or name (`jail.conf`, `jail.d/nginx.local`), for the notes. */
  readonly name: string;
  readonly text: string;
}

/** fail2ban jails that do not watch HTTP responses: they stay in fail2ban. */
const NOT_HTTP =
  /^(sshd|ssh|dropbear|ufw|postfix|dovecot|courier|vsftpd|proftpd|pure-ftpd|named|asterisk|mysqld|mongodb|.*-sslerror|.*-ddos|selinux.*|pam-generic|portsentry)/;

const SKIP_SECTIONS = new Set(['DEFAULT', 'INCLUDES', 'Definition', 'Init']);
const TRUE = /^(true|yes|1|on)$/i;
const FALSE = /^(false|no|0|off)$/i;

/** What `importFail2ban()` made of a fail2ban configuration: the jailkeeper config, and notes on what it left out or changed. */
export interface ImportResult {
  /** The jailkeeper options, ready for JSON. */
  config: {
    jails: Record<string, Record<string, unknown>>;
    ignoreIp?: string[];
    recidive?: Record<string, unknown>;
    verifiedCrawlers?: { jails: string[] };
  };
  /** What could not be translated, or was translated with a change, and why; one line each. */
  notes: string[];
  /**
   * What fail2ban itself would refuse, so the translation is not to be used: a failregex that does
   * not compile (`JK_ERR_FAIL2BAN_REGEX`). Its jail is left out.
   */
  errors: Array<{ code: ErrorCode; message: string }>;
  /** False when no jail could be translated, or something is in `errors`: the notes say why. */
  ok: boolean;
}

/** A section's maxretry, findtime and bantime as jail options; what cannot be read is a note. */
function windowOf(
  get: (key: string) => string | undefined,
  where: string,
  notes: string[],
): Record<string, unknown> {
  const window: Record<string, unknown> = {};
  const maxretry = get('maxretry');
  if (maxretry !== undefined) {
    const n = Number(maxretry);
    if (Number.isInteger(n) && n > 0) window.maxRetry = n;
    else notes.push(`${where}: maxretry = ${maxretry} is not a positive integer; left out.`);
  }
  for (const [key, option] of [
    ['findtime', 'findTime'],
    ['bantime', 'banTime'],
  ] as const) {
    const v = get(key);
    if (v !== undefined) {
      const t = time(v, `${where} ${key}`, notes);
      if (t !== undefined) window[option] = t;
    }
  }
  return window;
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

/**
 * Translates a fail2ban configuration into jailkeeper options. `source` is the text of a jail
 * file, or the files of a configuration in fail2ban's order (jail.conf, jail.d/*.conf,
 * jail.local, jail.d/*.local), merged as fail2ban merges them, `[DEFAULT]` and `%(var)s`
 * included. `filters` holds filter.d texts by filter name (the `.conf` followed by its `.local`):
 * each failregex line is translated as far as it carries meaning for an app (status, method,
 * paths, user agents); the stock nginx and Apache filters are known without them. Whatever is
 * not translated is said in `notes`, line by line.
 */
export function importFail2ban(
  source: string | readonly Fail2banFile[],
  filters: Readonly<Record<string, string>> = {},
): ImportResult {
  const files = typeof source === 'string' ? [{ name: 'jail.local', text: source }] : source;
  const sections: IniSections = new Map();
  const definedIn = new Map<string, Set<string>>();
  for (const file of files) {
    const parsed = parseIni(file.text);
    mergeIni(sections, parsed);
    for (const name of parsed.keys()) {
      const set = definedIn.get(name) ?? new Set();
      set.add(file.name);
      definedIn.set(name, set);
    }
  }
  const defaults: IniSection = sections.get('DEFAULT') ?? new Map();
  const notes: string[] = [];
  const errors: ImportResult['errors'] = [];
  const jails: Record<string, Record<string, unknown>> = {};
  const ignoreIp = new Set<string>();
  const crawlerJails: string[] = [];
  const skipped: string[] = [];
  let recidive: Record<string, unknown> | undefined;
  const pardonTargets = new Map<string, string>();

  const valueIn = (section: IniSection, sectionName: string) => (key: string) => {
    const raw = section.get(key) ?? defaults.get(key);
    if (raw === undefined) return undefined;
    return interpolate(raw, (name) => {
      const plain = name.replace(/^known\//, '');
      if (plain === '__name__') return sectionName;
      return section.get(plain) ?? defaults.get(plain);
    });
  };

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
  const defaultsGet = valueIn(new Map(), 'DEFAULT');
  const defaultIgnore = defaultsGet('ignoreip');
  if (defaultIgnore !== undefined) addIgnore(defaultIgnore, '[DEFAULT]');
  const defaultAction = defaults.get('action');
  if (defaultAction !== undefined && /action_m|mail|sendmail|mta/.test(defaultAction)) {
    notes.push(
      `[DEFAULT] action = ${defaultAction}: mail actions become createWebhookNotifier() (a JSON POST, Slack/Mattermost compatible) in the app; not part of the jail options.`,
    );
  }

  for (const [name, section] of sections) {
    if (SKIP_SECTIONS.has(name)) continue;
    const get = valueIn(section, name);
    const where = `[${name}]`;
    const stockOnly = [...(definedIn.get(name) ?? [])].every((f) => /(^|[\\/])jail\.conf$/.test(f));
    const enabledText = (get('enabled') ?? '').trim();
    const enabled = TRUE.test(enabledText);
    if (enabledText !== '' && !enabled && !FALSE.test(enabledText)) {
      notes.push(
        `${where}: enabled = ${enabledText} is not a boolean (true, yes, 1, on or false, no, 0, off); taken as not enabled, as fail2ban does after its warning. Did you mean enabled = true?`,
      );
    }
    const action = section.get('action');
    const whitelist =
      action === undefined ? undefined : /ignoreip\[\s*name\s*=\s*([A-Za-z0-9_.-]+)/.exec(action);
    if (whitelist) {
      pardonTargets.set(whitelist[1] as string, name);
      continue;
    }
    if (!enabled && stockOnly) {
      skipped.push(name);
      continue;
    }
    if (name === 'recidive') {
      if (!enabled) {
        notes.push(`${where}: not enabled in fail2ban; left out.`);
        continue;
      }
      recidive = windowOf(get, where, notes);
      continue;
    }
    const spec = parseFilterSpec(get('filter') ?? name);
    const filterName = spec.name;
    if (NOT_HTTP.test(name) || NOT_HTTP.test(filterName)) {
      notes.push(`${where}: watches ${filterName} (not HTTP responses of this app); keep it in fail2ban.`);
      continue;
    }

    // The failregex lines, translated one by one (or the stock filter's meaning).
    const jailFailregex = (section.get('failregex') ?? '').split('\n').filter((l) => l.trim() !== '');
    const {
      rules,
      loaded,
      stock,
      notes: ruleNotes,
      broken,
    } = filterRules(where, filterName, spec.args, filters, jailFailregex);
    if (broken.length > 0) {
      // fail2ban refuses to start a jail whose filter does not compile: no jail is made of it.
      for (const why of broken) {
        if (enabled) {
          errors.push({
            code: 'JK_ERR_FAIL2BAN_REGEX',
            message: `${where}: ${why}. fail2ban refuses this filter too; fix the expression (or disable the jail) and import again.`,
          });
        } else notes.push(`${where}: not enabled in fail2ban, and ${why}; left out.`);
      }
      continue;
    }
    notes.push(...ruleNotes);
    if (rules.length === 0) continue;

    // What every jail made from this section shares.
    const common: Record<string, unknown> = {};
    if (!enabled) {
      common.enabled = false;
      notes.push(`${where}: not enabled in fail2ban; kept with enabled: false.`);
    }
    Object.assign(common, windowOf(get, where, notes));
    if (TRUE.test(get('bantime.increment') ?? '')) {
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
      if (TRUE.test(get('bantime.overalljails') ?? '')) inc.overallJails = true;
      if (get('bantime.formula') !== undefined)
        notes.push(`${where}: bantime.formula is not translated; factor and multipliers are.`);
      common.banTimeIncrement = Object.keys(inc).length === 0 ? true : inc;
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

    // ignoreregex (the filter's and the jail's): routes become `exempt`, the rest is said.
    const exempt = exemptRoutes(
      where,
      [
        ...(loaded?.ignoreregex ?? []).map((raw) => ({ raw, from: filterName })),
        ...(section.get('ignoreregex') ?? '')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((raw) => ({ raw, from: 'the jail' })),
      ],
      (raw) => (loaded ? loaded.expand(raw) : interpolate(raw, (n) => get(n))),
      notes,
    );

    // ignorecommand: the fake-Googlebot check is verifiedCrawlers; no other command is run.
    const ignorecommand = (get('ignorecommand') ?? '').trim();
    const verifies = /fakegooglebot/.test(ignorecommand) || stock?.verifiedCrawlers === true;
    if (ignorecommand !== '' && !/fakegooglebot/.test(ignorecommand))
      notes.push(`${where}: ignorecommand = ${ignorecommand}: jailkeeper runs no commands; left out.`);
    if (verifies && ignorecommand === '')
      notes.push(
        `${where}: no ignorecommand, so fail2ban banned the real Googlebot too; jailkeeper spares it (verifiedCrawlers).`,
      );

    const groups = groupRules(rules);
    const names = groups.map((_, i) => (i === 0 ? name : `${name}.${i + 1}`));
    groups.forEach((rule, i) => {
      const jail: Record<string, unknown> = { ...rule, ...common };
      // A failregex that reads no status counts every response on its paths: said in words.
      if (rule.statuses === undefined && rule.paths !== undefined && rule.userAgents === undefined) {
        jail.statuses = 'any';
        notes.push(
          `${where}: its failregex reads no status, so every response on its paths counts, as in fail2ban: written statuses: 'any' (name the failure statuses if a success can answer there).`,
        );
      }
      if (exempt.length > 0) jail.exempt = exempt;
      jails[names[i] as string] = jail;
      if (verifies) crawlerJails.push(names[i] as string);
    });
    if (groups.length > 1)
      notes.push(
        `${where}: its failregex lines count different things, so it becomes ${groups.length} jails (${names.join(', ')}); fail2ban counted them together, here each counts on its own.`,
      );
    if (verifies)
      notes.push(
        `${where}: verifiedCrawlers: a client claiming to be Googlebot is checked by reverse then forward DNS; the real crawler is spared, a fake one is counted.`,
      );
  }
  for (const [target, source] of pardonTargets) {
    const jail = jails[target];
    if (jail === undefined) {
      notes.push(`[${source}] whitelists clients of ${target}, which was not translated; left out.`);
      continue;
    }
    const methods = Array.isArray(jail.methods) ? (jail.methods as string[]) : undefined;
    // A pardon is earned by default with POST, PUT or PATCH: a jail of GET logins names GET.
    const byGet = methods !== undefined && !methods.some((m) => ['POST', 'PUT', 'PATCH'].includes(m));
    jail.pardon = byGet
      ? { statuses: [200], methods: methods.filter((m) => m !== 'HEAD') }
      : { statuses: [200] };
    notes.push(
      `[${source}]: the whitelist-after-login jail becomes \`pardon\` on ${target}: after a 200 the threshold rises (4 × maxRetry for 30d) instead of immunity, so a stolen session cannot brute-force freely.`,
    );
  }
  if (skipped.length > 0)
    notes.push(
      `${skipped.length} jail(s) of jail.conf are not enabled and were skipped: ${skipped.slice(0, 12).join(', ')}${skipped.length > 12 ? ', …' : ''}.`,
    );
  const config: ImportResult['config'] = { jails };
  if (ignoreIp.size > 0) config.ignoreIp = [...ignoreIp];
  if (recidive) config.recidive = recidive;
  if (crawlerJails.length > 0) config.verifiedCrawlers = { jails: crawlerJails };
  const translated = Object.keys(jails).length > 0;
  if (!translated)
    notes.push(
      'No jail could be translated: the jailkeeper config needs at least one (the notes above say why for each).',
    );
  return { config, notes, errors, ok: translated && errors.length === 0 };
}
