import { invalid } from '../errors.js';

const SIGNATURE = /^[^/?#*\s][^?#*\s]*\*?$/;
const ESCAPE = /%([0-9a-f]{2})/gi;
/**
 * What {@link probePath} may change beyond what the expression already ignores (case, doubled
 * slashes): an escape, a backslash, a `;`, whitespace, a NUL, a dot ending a segment. A path
 * without any is matched as written only, so most misses skip the reading.
 */
const SPELLED = /[%\\;\s\0]|\.(?:\/|$)/;

function decodeEscape(_: string, hex: string): string {
  return String.fromCharCode(Number.parseInt(hex, 16));
}

/**
 * A request path as the server behind any router may read it, for probe matching: every valid
 * percent escape decoded (one by one, so one malformed escape keeps none of the others encoded;
 * twice over, for `%2577`), cut at a NUL (PHP reads `wp-login.php%00.jpg` as `wp-login.php`),
 * backslashes read as slashes, each segment without its `;params` and without trailing dots and
 * spaces (Windows servers drop them), dot segments resolved. Lower case. Matching more spellings
 * is safe here: a probe only ever weighs on a request no route took.
 */
function probePath(path: string): string {
  let text = path;
  for (let pass = 0; pass < 3 && text.includes('%'); pass++) {
    const next = text.replace(ESCAPE, decodeEscape);
    if (next === text) break;
    text = next;
  }
  const nul = text.indexOf('\0');
  if (nul !== -1) text = text.slice(0, nul);
  const out: string[] = [];
  for (const raw of text.toLowerCase().replace(/\\/g, '/').split('/')) {
    const semicolon = raw.indexOf(';');
    const segment = (semicolon === -1 ? raw : raw.slice(0, semicolon)).replace(/[.\s]+$/, (tail) =>
      // `.` and `..` are dot segments, not trailing dots.
      raw === '.' || raw === '..' ? tail : '',
    );
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

/**
 * Compiles probe signatures once (see PROBE_PATH_GROUPS for the syntax) into one case-insensitive
 * expression over request paths, matched on the path as written and on {@link probePath}'s
 * reading of it, so that no spelling of a probe weighs less than the plain one. It runs only on a
 * failure, never on a clean request.
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
  return (requestPath: string) =>
    probe.test(requestPath) || (SPELLED.test(requestPath) && probe.test(probePath(requestPath)));
}
