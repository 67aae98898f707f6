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

/** The path of a request URL, without its query string. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
