/**
 * A path as routers may read it: percent-decoded, lower case, slashes collapsed, dot segments
 * resolved, `;params` and the trailing slash removed.
 */
export function normalizePath(path: string): string {
  let text = path;
  try {
    text = decodeURIComponent(path);
  } catch {
    // a malformed escape: keep the raw text
  }
  const out: string[] = [];
  for (const raw of text.toLowerCase().replace(/\\/g, '/').split('/')) {
    const segment = raw.split(';')[0] as string;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

/**
 * The path of a request target as routers read it: without its query string or a fragment, and
 * of an absolute-form target (`http://host/login`, which Node accepts) only its path, backslashes
 * read as slashes (as Express's URL parser reads them where it parses the whole target). A rule
 * judged by the path (where the router gives no pattern text) would otherwise miss
 * `http://x/rx-login` and `/rx-login#x`, which Express routes to `/rx-login`.
 */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  let end = url.indexOf('?');
  if (end === -1) end = url.length;
  const hash = url.indexOf('#');
  if (hash !== -1 && hash < end) end = hash;
  let start = 0;
  if (url.charCodeAt(0) !== 47 /* '/' */) {
    const scheme = url.indexOf('://');
    if (scheme !== -1 && scheme < end) {
      const slash = url.indexOf('/', scheme + 3);
      start = slash === -1 || slash > end ? end : slash;
    }
  }
  const path = start === 0 && end === url.length ? url : start === end ? '/' : url.slice(start, end);
  // A backslash makes Express's URL parser read the path with it as a slash ('/rx-login\\#').
  return path.includes('\\') ? path.replaceAll('\\', '/') : path;
}
