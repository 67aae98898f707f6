/**
 * Whether a failregex line compiles as fail2ban's Python would compile it. The importer reads
 * expressions for meaning and never runs them, so without this check a line Python refuses (an
 * unclosed group, `404**`) was read as far as it went and became a jail fail2ban never ran.
 *
 * The line is rewritten into JavaScript's dialect where the two differ (named groups, inline and
 * scoped flags, comments, `\A` and `\Z`, Python 3.11's possessive repeats and atomic groups) and
 * compiled with RegExp, whose errors for what both refuse are the same: unbalanced parentheses,
 * an unterminated class, a repeat of nothing or of a repeat.
 */
export function failregexError(regex: string): string | undefined {
  // A variable may expand to several lines: fail2ban compiles each on its own.
  for (const line of regex.split('\n')) {
    const error = lineError(line.trim());
    if (error !== undefined) return error;
  }
  return undefined;
}

function lineError(regex: string): string | undefined {
  let js = regex
    .replace(/\(\?#[^)]*\)/g, '')
    .replace(/\(\?P<([A-Za-z_]\w*)>/g, '(?<$1>')
    .replace(/\(\?P=([A-Za-z_]\w*)\)/g, '\\k<$1>')
    .replace(/\(\?[aiLmsux]*(?:-[imsx]+)?:/g, '(?:')
    .replace(/\(\?>/g, '(?:')
    .replace(/([*+?}])\+/g, '$1')
    .replace(/\\[AZ]/g, '');
  // Inline flags apply to the whole expression in Python (and must lead it in 3.11).
  js = js.replace(/\(\?[aiLmsux]+\)/g, '');
  // Conditional groups `(?(1)yes|no)`: JavaScript has none; their branches are checked as a group.
  js = js.replace(/\(\?\((?:\w+)\)/g, '(?:');
  try {
    new RegExp(js);
    return undefined;
  } catch (error) {
    return ((error as Error).message.split(': ').at(-1) ?? 'invalid').toLowerCase();
  }
}
