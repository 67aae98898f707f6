import { agentStrings, pathGlobs } from './regex-glob.js';
import {
  isAnyRun,
  isLit,
  isLoose,
  isSpace,
  literalText,
  parseRegex,
  plainGroup,
  type RegexNode,
} from './regex-tree.js';

/** What one failregex line counts, in jailkeeper's terms. Absent means "any". */
export interface TranslatedRule {
  statuses?: number[];
  methods?: string[];
  paths?: string[];
  userAgents?: string[];
}

/** The translation of one regex line: its rules (one per top-level alternative), or why not. */
export type LineTranslation =
  | { readonly ok: true; readonly rules: TranslatedRule[]; readonly notes: string[] }
  | { readonly ok: false; readonly reason: string };

const METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'PROPFIND',
]);
const CLIENT_TAGS = new Set(['HOST', 'ADDR', 'IP4', 'IP6', 'DNS']);

function methodWord(nodes: readonly RegexNode[], at: number): { word: string; end: number } | undefined {
  let word = '';
  let k = at;
  while (k < nodes.length) {
    const node = nodes[k];
    if (!isLit(node) || !/[A-Z]/.test(node.c)) break;
    word += node.c;
    k++;
  }
  return METHODS.has(word) ? { word, end: k } : undefined;
}

/** The methods a node stands for: a list, null for "any method", undefined when it is no method. */
function methodsAt(
  nodes: readonly RegexNode[],
  at: number,
): { methods: string[] | null; end: number } | undefined {
  const node = nodes[at];
  if (node === undefined) return undefined;
  const alts = plainGroup(node);
  if (alts !== undefined) {
    const words = alts.map((alt) => literalText(alt));
    if (words.every((w) => w !== undefined && METHODS.has(w)))
      return { methods: words as string[], end: at + 1 };
    return undefined;
  }
  const word = methodWord(nodes, at);
  if (word) return { methods: [word.word], end: word.end };
  // \S+, \w+, [A-Z]{3,10}: some method.
  if (
    node.t === 'set' &&
    !node.isSpace &&
    node.q !== undefined &&
    node.q.min >= 1 &&
    !isLit(nodes[at + 1], '/')
  )
    return { methods: null, end: at + 1 };
  return undefined;
}

/** Three digits in a row (not part of a longer number), or a group of such alternatives. */
function statusesAt(nodes: readonly RegexNode[], at: number): number[] | undefined {
  const node = nodes[at];
  const alts = plainGroup(node);
  if (alts !== undefined) {
    const codes = alts.map((alt) => literalText(alt));
    if (codes.every((c) => c !== undefined && /^\d{3}$/.test(c))) return codes.map(Number);
    return undefined;
  }
  const digit = (n: RegexNode | undefined) => isLit(n) && /\d/.test(n.c);
  if (digit(nodes[at - 1])) return undefined;
  if (!digit(node) || !digit(nodes[at + 1]) || !digit(nodes[at + 2]) || digit(nodes[at + 3]))
    return undefined;
  return [Number(literalText(nodes.slice(at, at + 3)))];
}

function findStatuses(nodes: readonly RegexNode[]): number[] | undefined {
  for (let k = 0; k < nodes.length; k++) {
    const found = statusesAt(nodes, k);
    if (found?.every((s) => s >= 100 && s <= 599)) return found;
  }
  return undefined;
}

function quantText(n: RegexNode): string {
  const q = n.q;
  if (q === undefined) return '';
  if (q.min === 0 && q.max === 1) return '?';
  if (q.max === Number.POSITIVE_INFINITY) return q.min === 0 ? '*' : q.min === 1 ? '+' : `{${q.min},}`;
  return q.min === q.max ? `{${q.min}}` : `{${q.min},${q.max}}`;
}

function shorten(text: string): string {
  return text.length > 70 ? `${text.slice(0, 67)}...` : text;
}

/** A node list written back as a short regex, for the notes. */
function describeNodes(nodes: readonly RegexNode[]): string {
  return nodes
    .map((n) => {
      const body =
        n.t === 'lit'
          ? n.c
          : n.t === 'set'
            ? n.src
            : n.t === 'any'
              ? '.'
              : n.t === 'group'
                ? `(${n.alts.map(describeNodes).join('|')})`
                : n.t === 'tag'
                  ? `<${n.name}>`
                  : '';
      return body + quantText(n);
    })
    .join('');
}

/**
 * Translates one failregex (or ignoreregex) line, already interpolated, of a filter over an
 * access log: the status after the request, the method and path inside it, the user agent in the
 * last quoted field. `requireHost`: the line must start with the client (`<HOST>`), as a failregex
 * over the access log does; an ignoreregex may match anywhere.
 */
export function translateRegex(expanded: string, { requireHost = true } = {}): LineTranslation {
  const top = parseRegex(expanded);
  const rules: TranslatedRule[] = [];
  const notes: string[] = [];
  for (const alt of top) {
    const one = translateAlternative(alt, requireHost, notes);
    if (!one.ok) return one;
    rules.push(one.rule);
  }
  return { ok: true, rules, notes };
}

function translateAlternative(
  nodes: RegexNode[],
  requireHost: boolean,
  notes: string[],
): { ok: true; rule: TranslatedRule } | { ok: false; reason: string } {
  let start = 0;
  while (
    start < nodes.length &&
    (nodes[start]?.t === 'anchor' ||
      isSpace(nodes[start]) ||
      ((nodes[start] as RegexNode).q?.min === 0 && nodes[start]?.t === 'group'))
  )
    start++;
  const first = nodes[start];
  let rest: RegexNode[];
  if (first?.t === 'tag' && CLIENT_TAGS.has(first.name)) rest = nodes.slice(start + 1);
  else if (requireHost) return { ok: false, reason: 'not-access-log' };
  else {
    const host = nodes.findIndex((n) => n.t === 'tag' && CLIENT_TAGS.has(n.name));
    rest = host === -1 ? nodes : nodes.slice(host + 1);
  }

  // The quoted fields of the combined format: "request" status size "referer" "user agent".
  const quotes: number[] = [];
  rest.forEach((n, k) => {
    if (isLit(n, '"')) quotes.push(k);
  });
  const segments: RegexNode[][] = [];
  let from = 0;
  for (const q of quotes) {
    segments.push(rest.slice(from, q));
    from = q + 1;
  }
  segments.push(rest.slice(from));
  const request = quotes.length > 0 ? (segments[1] as RegexNode[]) : rest;

  // Method: the request's first word, or (without quotes) the first method word on the line.
  let method: { methods: string[] | null; end: number } | undefined;
  if (quotes.length > 0) method = methodsAt(request, 0);
  else {
    for (let k = 0; k < request.length && method === undefined; k++) {
      const found = methodsAt(request, k);
      if (found?.methods) method = found;
    }
  }

  // Path: after the method and its space, up to the next space or quote.
  let k = method?.end ?? 0;
  const pathStart = (() => {
    if (method === undefined && quotes.length === 0) {
      // No quote, no method: the run before the first literal space after the client's fields.
      for (let s = 0; s < request.length; s++) {
        if (!isLit(request[s], ' ') || s === 0) continue;
        let b = s;
        while (b > 0 && !isSpace(request[b - 1]) && !isLit(request[b - 1], '-')) b--;
        const run = request.slice(b, s);
        if (run.some((n) => isLit(n) && /[A-Za-z0-9]/.test(n.c))) return b;
      }
      return -1;
    }
    if (method === undefined) return -1;
    while (isSpace(request[k])) k++;
    return k;
  })();
  let pathNodes: RegexNode[] = [];
  let afterPath = method?.end ?? 0;
  let prefix = false;
  if (pathStart !== -1) {
    let e = pathStart;
    for (; e < request.length; e++) {
      const n = request[e] as RegexNode;
      if (isSpace(n) || isLit(n, '"')) break;
      if (isAnyRun(n) && isLit(request[e + 1], 'H') && literalText(request.slice(e + 1, e + 5)) === 'HTTP') {
        e++;
        pathNodes.push(n);
        break;
      }
      pathNodes.push(n);
    }
    afterPath = e;
    if (e >= request.length && quotes.length < 2) prefix = true;
  }
  const query = pathNodes.findIndex((n) => isLit(n, '?'));
  if (query !== -1) {
    pathNodes = pathNodes.slice(0, query);
    prefix = false;
    notes.push('the query string condition is left out (jailkeeper matches paths, without the query)');
  }
  if (prefix && pathNodes.length > 0 && !pathNodes.every(isLoose))
    pathNodes.push({ t: 'any', q: { min: 0, max: Number.POSITIVE_INFINITY } });

  let paths: string[] | undefined;
  if (pathNodes.length > 0 && !pathNodes.every(isLoose)) {
    const globs = pathGlobs(pathNodes);
    if (!globs.ok)
      return {
        ok: false,
        reason: `its request target (${globs.target}) is not a path: an app routes on paths starting with /`,
      };
    if (globs.globs !== null) {
      paths = globs.globs;
      if (globs.widened)
        notes.push(
          `paths widened where the regex is not a list of strings (${shorten(describeNodes(pathNodes))}): a class, an unescaped dot or a repetition became * or **`,
        );
    }
  }

  // Status: after the path, inside the request's remainder or right after it, before any other field.
  const statusZone = [...request.slice(afterPath)];
  const after = segments[2];
  if (quotes.length > 0 && after !== undefined && (after.length === 0 || isSpace(after[0])))
    statusZone.push(...after);
  const statuses = findStatuses(statusZone);

  // User agent: the last quoted field after the request.
  let userAgents: string[] | undefined;
  if (quotes.length >= 2) {
    const fields: RegexNode[][] = [];
    for (let s = 2; s < segments.length; s++) {
      const seg = segments[s] as RegexNode[];
      const trailing = s === segments.length - 1;
      if (seg.length === 0 || isSpace(seg[0])) continue;
      if (trailing && seg.every(isLoose)) continue;
      fields.push(seg);
    }
    // Fields are positional (referer, then user agent) only when nothing spans them.
    const structured = after !== undefined && after.length > 0 && isSpace(after[0]) && !after.some(isAnyRun);
    const agentField = structured ? fields[1] : fields[fields.length - 1];
    const refererFields = structured ? fields.slice(0, 1) : fields.slice(0, -1);
    if (agentField !== undefined) {
      const agents = agentStrings(agentField);
      if (agents.list.length > 0) {
        userAgents = agents.list;
        notes.push('user agents match as case-insensitive substrings');
        if (agents.approximated.length > 0)
          notes.push(
            `where the user-agent regex is not a plain string, its most telling part is used: ${agents.approximated.map((a) => JSON.stringify(a)).join(', ')}`,
          );
      }
    }
    for (const field of refererFields) {
      if (!field.every(isLoose))
        notes.push(
          `the referer condition ${JSON.stringify(describeNodes(field))} is left out (jailkeeper does not see the referer)`,
        );
    }
  }

  const rule: TranslatedRule = {};
  if (statuses !== undefined) {
    const failures = statuses.filter((s) => s >= 400);
    if (failures.length === 0)
      return {
        ok: false,
        reason: `it counts status ${statuses.join(', ')}, a success; jailkeeper counts failures (400 to 599)`,
      };
    rule.statuses = failures;
  }
  if (method?.methods) {
    const methods = [...method.methods];
    // Routers answer HEAD with the GET route, and servers log it as HEAD.
    if (methods.includes('GET') && !methods.includes('HEAD')) {
      methods.push('HEAD');
      notes.push('HEAD counts with GET: an app answers HEAD with its GET route');
    }
    rule.methods = methods;
  }
  if (paths !== undefined) rule.paths = paths;
  if (userAgents !== undefined) rule.userAgents = userAgents;
  if (rule.statuses === undefined && rule.paths === undefined && rule.userAgents === undefined)
    return {
      ok: false,
      reason: `it names no status, path or user agent${rule.methods ? ` (only ${rule.methods.join('/')})` : ''}: as a jail it would count every response`,
    };
  return { ok: true, rule };
}
