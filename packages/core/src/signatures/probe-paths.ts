/**
 * Paths that scanners request and that no visitor of a Node app does: the data of the `probes`
 * option and the `scanners` preset, each group with where it comes from.
 *
 * A signature is matched, ignoring case and doubled slashes, against every position in the path
 * where a segment starts: `wp-login.php` matches `/wp-login.php` and `/blog/wp-login.php`. It must
 * end where a segment ends (`pma` matches `/pma/` but not `/pmarket`), unless it ends with `*`, which
 * lets the last segment go on (`.env*` matches `/.env.bak`). A signature only ever weighs on a
 * request that no route of the app matched and that was answered 404 or 410: a path the app
 * serves is never a probe, whatever its name.
 */
export interface ProbeSignatureGroup {
  /** What the group is. */
  readonly name: string;
  /** Where the list comes from. */
  readonly source: string;
  readonly signatures: readonly string[];
}

/** The groups of {@link PROBE_PATHS}. Generic names (`mail`, `admin`, `login`) are left out on purpose: a reader may type them. */
export const PROBE_PATH_GROUPS: readonly ProbeSignatureGroup[] = Object.freeze([
  {
    name: 'webmail, phpMyAdmin, WordPress sign-in, cgi-bin',
    source:
      "fail2ban 1.0.2, filter.d/botsearch-common.conf (the nginx-botsearch and apache-botsearch filters), without its generic 'mail'",
    signatures: [
      'roundcube*',
      'horde',
      'extmail',
      'webmail*',
      'v-webmail',
      'vwebmail',
      'pma',
      'phpmyadmin*',
      'myadmin*',
      'mysqladmin*',
      'typo3',
      'xampp',
      'wp-login.php',
      'wp-signup.php',
      'wp-admin*',
      'cgi-bin*',
    ],
  },
  {
    name: 'WordPress and other PHP applications',
    source:
      'the WordPress file layout (xmlrpc.php is the pingback and brute-force endpoint); the PHP installers and info pages scanners ask for',
    signatures: [
      'xmlrpc.php',
      'wp-content*',
      'wp-includes*',
      'wp-config.php*',
      'wp-json',
      'phpinfo.php',
      'info.php',
      'setup.php',
      'install.php',
      'eval-stdin.php',
    ],
  },
  {
    name: 'CMS sign-in and admin pages (Joomla, Drupal, generic PHP)',
    source:
      "Joomla's administrator application (/administrator/, docs.joomla.org: Administrator (Application)); Drupal's file layout (misc/drupal.js, core/misc/drupal.js from Drupal 8; sites/default/settings.php); the generic PHP admin script admin.php. A CMS-login botnet on a real 2015 Apache log (issue 27) asked for /wp-login.php, /administrator/ and /admin.php within seconds. WordPress's wp-login.php and wp-admin are in the first group. Drupal's sign-in form, /user/login, is left out: a reader looking for an app's sign-in page may type it, as with 'login'",
    signatures: ['administrator', 'admin.php', 'misc/drupal.js', 'sites/default/settings.php'],
  },
  {
    name: 'rich-text editor and file-manager uploads',
    source:
      'FCKeditor and CKFinder upload connectors (the scanner of issue 19 asked for fckeditor under a dozen paths), elFinder',
    signatures: ['fckeditor*', 'ckfinder*', 'elfinder*', 'kcfinder*'],
  },
  {
    name: 'secrets and version-control metadata',
    source:
      'files a deployment may leave in a web root: dotenv files, Git, Subversion and Mercurial metadata, AWS credentials, SSH keys, htpasswd',
    signatures: ['.env*', '.git*', '.svn*', '.hg*', '.aws*', '.ssh*', '.htpasswd', '.ds_store', 'id_rsa*'],
  },
  {
    name: 'known exploit paths',
    source:
      "PHPUnit's eval-stdin.php (CVE-2017-9841), D-Link's HNAP1 (CVE-2015-2051), the Realtek boa routers' boaform, Spring Boot's actuator, Tomcat's manager, Apache's server-status",
    signatures: [
      'vendor/phpunit*',
      'phpunit*',
      'hnap1',
      'boaform*',
      'actuator*',
      'manager/html',
      'server-status',
    ],
  },
]);

/** Every probe signature: the default of a jail's `probes.signatures`. */
export const PROBE_PATHS: readonly string[] = Object.freeze(PROBE_PATH_GROUPS.flatMap((g) => g.signatures));
