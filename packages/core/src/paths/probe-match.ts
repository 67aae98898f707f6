import { invalid } from '../errors.js';

/** A signature compiled: the lower-case text after a slash, and whether the last segment may go on. */
interface Compiled {
  readonly needle: string;
  readonly open: boolean;
}

const SIGNATURE = /^[^/?#*\s][^?#*\s]*\*?$/;

/**
 * Compiles probe signatures once (see PROBE_PATH_GROUPS for the syntax) into a matcher of request
 * paths. It runs only on a failure, never on a clean request.
 */
export function compileProbes(path: string, value: unknown): (requestPath: string) => boolean {
  if (!Array.isArray(value) || value.length === 0) {
    invalid(path, 'a non-empty array of probe signatures (e.g. ["wp-login.php", ".env*"])', value);
  }
  const compiled: Compiled[] = value.map((entry: unknown, i) => {
    if (typeof entry !== 'string' || !SIGNATURE.test(entry) || entry.endsWith('/')) {
      invalid(
        `${path}[${i}]`,
        'a path signature without a leading slash, query or inner "*" (e.g. "wp-login.php", "vendor/phpunit*")',
        entry,
      );
    }
    const open = entry.endsWith('*');
    return { needle: `/${(open ? entry.slice(0, -1) : entry).toLowerCase()}`, open };
  });
  return (requestPath: string) => {
    // Scanners double slashes (//phpmyadmin/) and vary case: neither makes a path the app serves.
    const p = requestPath.toLowerCase().replace(/\/{2,}/g, '/');
    for (const { needle, open } of compiled) {
      for (let at = p.indexOf(needle); at !== -1; at = p.indexOf(needle, at + 1)) {
        const end = at + needle.length;
        if (open || end === p.length || p.charCodeAt(end) === 47) return true;
      }
    }
    return false;
  };
}
