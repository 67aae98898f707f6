import type { TranslatedRule } from './fail2ban-translate.js';

/** What jailkeeper knows of a stock fail2ban filter without reading its filter.d file. */
export interface StockFilter {
  /** The jail rules the filter becomes in the app. */
  readonly rules?: readonly TranslatedRule[];
  /** Why it stays in fail2ban (the app never sees what it watches). */
  readonly keep?: string;
  /** What the translation means, said in the import notes. */
  readonly note?: string;
  /** The filter's jail spares verified crawlers (fail2ban's ignorecommand for it). */
  readonly verifiedCrawlers?: boolean;
}

/**
 * The paths bots probe for (webmail, phpMyAdmin, WordPress sign-in and admin, cgi-bin), as the
 * botsearch filters list them (botsearch-common.conf of fail2ban 1.0.2), each at the root and after a
 * doubled slash, and anything below.
 */
function scannerPaths(): string[] {
  const names = ['roundcube', 'mail', 'extmail', 'horde', 'webmail', 'vwebmail', 'v-webmail'];
  for (const prefix of ['typo3/', 'xampp/', 'admin/', '']) {
    names.push(`${prefix}pma`);
    for (const php of ['', 'php'])
      for (const my of ['M', 'm']) for (const a of ['A', 'a']) names.push(`${prefix}${php}${my}y${a}dmin`);
  }
  names.push('wp-login.php', 'wp-signup.php', 'wp-admin.php', 'cgi-bin', 'mysqladmin');
  return [...names.map((n) => `/${n}**`), ...names.map((n) => `//${n}**`)];
}

/** The scanner paths of nginx-botsearch and apache-botsearch. */
export const SCANNER_PATHS: readonly string[] = Object.freeze(scannerPaths());

const KEEP_ERROR_PAGE =
  'ModSecurity refuses the request in the web server, before the app: the app never sees it';

/**
 * The stock nginx and Apache filters. A filter's own failregex, when given (`--filters`) and
 * translatable, wins; this table is used for the filters that read the web server's error log,
 * and when no filter.d is given.
 */
export const STOCK_FILTERS: Readonly<Record<string, StockFilter>> = Object.freeze({
  'nginx-http-auth': {
    rules: [{ statuses: [401] }],
    note: "nginx's basic-auth failures (its error log): the app answers them with 401",
  },
  'apache-auth': {
    rules: [{ statuses: [401] }],
    note: "Apache's authentication failures (its error log): the app answers them with 401",
  },
  'nginx-forbidden': {
    rules: [{ statuses: [403] }],
    note: 'access forbidden by an nginx rule (its error log): the app answers it with 403',
  },
  'nginx-limit-req': {
    rules: [{ statuses: [429] }],
    note: "nginx's limit_req (its error log): the app's rate limiter answers 429",
  },
  'nginx-botsearch': {
    rules: [{ statuses: [404], methods: ['GET', 'POST', 'HEAD'], paths: [...SCANNER_PATHS] }],
    note: '404s on the paths scanners probe (webmail, phpMyAdmin, wp-login.php, cgi-bin), not every 404',
  },
  'apache-botsearch': {
    rules: [{ statuses: [404], paths: [...SCANNER_PATHS] }],
    note: '404s on the paths scanners probe (webmail, phpMyAdmin, wp-login.php, cgi-bin), not every 404',
  },
  'nginx-bad-request': { rules: [{ statuses: [400] }] },
  'nginx-env': {
    rules: [{ paths: ['/**env'] }],
    note: "requests for .env files (any status); fail2ban's regex takes any character before env, so .flaskenv too",
  },
  'nginx-wplogin': {
    rules: [{ statuses: [500], methods: ['POST'], paths: ['/wp-login.php'] }],
  },
  'nginx-noscript': {
    rules: [
      {
        statuses: [404],
        methods: ['GET', 'HEAD'],
        paths: ['/**.php', '/**.asp', '/**.exe', '/**.pl', '/**.cgi'],
      },
    ],
  },
  'apache-noscript': {
    rules: [{ statuses: [404], paths: ['/**.php', '/**.asp', '/**.exe', '/**.pl'] }],
    note: 'script not found (its error log): the app answers 404 for these paths',
  },
  'apache-nohome': {
    rules: [{ statuses: [404], paths: ['/~**', '/**/~**'] }],
    note: 'home directories (/~user) not found (its error log): the app answers 404',
  },
  'apache-fakegooglebot': {
    // As the filter's `\bGooglebot/`: Googlebot-Image/1.0 and kin are not counted.
    rules: [{ userAgents: ['Googlebot/'] }],
    note: 'every client claiming to be Googlebot is counted, and a real one is spared by verifiedCrawlers',
    verifiedCrawlers: true,
  },
  'apache-shellshock': {
    rules: [{ userAgents: ['() {'] }],
    note: 'the shellshock payload in the User-Agent (jailkeeper sees that header, not the others bash would read)',
  },
  'apache-zerotolerance': {
    // Its failregex lines, condensed: they count three different things, so three jails.
    rules: [
      {
        statuses: [404],
        methods: ['GET', 'POST', 'HEAD'],
        paths: [
          '/**scripts/setup*.php',
          '/**scripts/Setup*.php',
          '/hndUnblock.cgi',
          '/tmUnblock.cgi',
          '/**muieblackcat',
          '/**cgi-sys/entropysearch.cgi',
        ],
      },
      {
        methods: ['GET', 'POST', 'HEAD'],
        userAgents: ['robertdavidgraham/sysscan', 'masscan/', 'Jorgee', ':;};'],
      },
      { methods: ['GET', 'POST', 'HEAD'], paths: ['/shell', '/w00tw00t.at.ISC.SANS.DFind**'] },
    ],
    note: "404s on phpMyAdmin's setup script and other exploit paths; the scanners' user agents (sysscan, masscan/, Jorgee) and the shellshock payload; /shell and /w00tw00t... at any status (its proxy-probe line, a request target that is not a path, is left out)",
  },
  'apache-badbots': {
    keep: undefined,
    note: 'its list of bots becomes userAgents when its filter.d file is given (--filters)',
  },
  'nginx-modsecurity': { keep: KEEP_ERROR_PAGE },
  'apache-modsecurity': { keep: KEEP_ERROR_PAGE },
  'apache-overflows': {
    keep: "malformed and overlong requests are refused by the HTTP parser (Node answers 400, 414 or 431 itself): the app never sees them, and Apache's error codes (AH00126) are not HTTP statuses",
  },
  'apache-noindex': { keep: 'directory listings are the web server’s: an app serves no directory index' },
  'apache-pass': {
    keep: 'a port knock (a 200 on a secret URL opens the firewall), not a failure',
  },
  'nginx-tls-fallback': { keep: 'TLS handshake failures happen before HTTP: the app never sees them' },
  'nginx-sslerror': { keep: 'TLS handshake failures happen before HTTP: the app never sees them' },
  // Not in fail2ban's filter.d, but common in jail.local files.
  'nginx-404': { rules: [{ statuses: [403, 404] }] },
  'nginx-4xx': { rules: [{ statuses: [400, 403, 404] }] },
  'apache-excessive': { rules: [{ statuses: [429] }] },
});
