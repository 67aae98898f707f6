import { invalid } from '../errors.js';

const SIGNATURE = /^[^/?#*\s][^?#*\s]*\*?$/;

/**
 * Compiles probe signatures once (see PROBE_PATH_GROUPS for the syntax) into one case-insensitive
 * expression over request paths. It runs only on a failure, never on a clean request.
 */
export function compileProbes(path: string, value: unknown): (requestPath: string) => boolean {
  if (!Array.isArray(value) || value.length === 0) {
    invalid(path, 'a non-empty array of probe signatures (e.g. ["wp-login.php", ".env*"])', value);
  }
  const alternatives = value.map((entry: unknown, i) => {
    if (typeof entry !== 'string' || !SIGNATURE.test(entry) || entry.endsWith('/')) {
      invalid(
        `${path}[${i}]`,
        'a path signature without a leading slash, query or inner "*" (e.g. "wp-login.php", "vendor/phpunit*")',
        entry,
      );
    }
    const open = entry.endsWith('*');
    // Scanners double slashes (vendor//phpunit): a slash of the signature matches one or more.
    const body = (open ? entry.slice(0, -1) : entry)
      .split('/')
      .map((segment) => segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('/+');
    return open ? body : `${body}(?=/|$)`;
  });
  // Each signature starts a segment: after a slash, at any depth.
  const probe = new RegExp(`/(?:${alternatives.join('|')})`, 'i');
  return (requestPath: string) => probe.test(requestPath);
}
