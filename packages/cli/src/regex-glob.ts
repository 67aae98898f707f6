import { isAnyRun, isLit, literalText, plainGroup, type RegexNode } from './regex-tree.js';

/** The most globs one failregex line may become; past it the widest alternatives become `*`. */
const MAX_GLOBS = 128;

// Wildcards while expanding: a segment wildcard (`*`) and a cross-segment one (`**`).
const SEG = '\u0001';
const ANY = '\u0002';

interface Expansion {
  list: string[];
  widened: boolean;
}

function wildcard(crossesSlash: boolean): string {
  return crossesSlash ? ANY : SEG;
}

function canCrossSlash(node: RegexNode): boolean {
  switch (node.t) {
    case 'any':
      return true;
    case 'set':
      return node.slash;
    case 'lit':
      return node.c === '/';
    case 'group':
      return node.alts.some((alt) => alt.some(canCrossSlash));
    default:
      return false;
  }
}

function product(parts: Expansion[]): Expansion {
  const lists = parts.map((p) => p.list);
  let widened = parts.some((p) => p.widened);
  const size = () => lists.reduce((n, l) => n * l.length, 1);
  // Too many combinations: the alternatives with the most members become a wildcard, one by one.
  while (size() > MAX_GLOBS) {
    let widest = 0;
    for (let k = 1; k < lists.length; k++)
      if ((lists[k] as string[]).length > (lists[widest] as string[]).length) widest = k;
    const crosses = (lists[widest] as string[]).some((s) => s.includes('/') || s.includes(ANY));
    lists[widest] = [wildcard(crosses)];
    widened = true;
  }
  let out = [''];
  for (const list of lists) {
    const next: string[] = [];
    for (const a of out) for (const b of list) next.push(a + b);
    out = next;
  }
  return { list: out, widened };
}

function sequence(nodes: readonly RegexNode[]): Expansion {
  return product(nodes.map(expand));
}

/** The strings a node stands for in a path, with `*`/`**` where it is not a short list. */
function expand(node: RegexNode): Expansion {
  let base: Expansion;
  switch (node.t) {
    case 'lit':
      base = node.c === '*' ? { list: [SEG], widened: true } : { list: [node.c], widened: false };
      break;
    case 'any':
      base = { list: [SEG], widened: true };
      break;
    case 'set':
      base = node.chars
        ? { list: [...node.chars], widened: false }
        : { list: [wildcard(node.slash)], widened: true };
      break;
    case 'anchor':
      base = { list: [''], widened: false };
      break;
    case 'tag':
      base = { list: [SEG], widened: true };
      break;
    case 'group': {
      if (node.look) {
        base = { list: [''], widened: true };
        break;
      }
      const alts = node.alts.map(sequence);
      const list = [...new Set(alts.flatMap((a) => a.list))];
      base = { list, widened: alts.some((a) => a.widened) };
      if (list.length > MAX_GLOBS) base = { list: [wildcard(canCrossSlash(node))], widened: true };
      break;
    }
  }
  const q = node.q;
  if (q === undefined) return base;
  if (q.max === Number.POSITIVE_INFINITY || q.max > 3 || base.list.length ** q.max > MAX_GLOBS) {
    // Repeated without a small bound: once (when required), then anything of its kind. `.*`,
    // `\S*` or `[^,]*` are exactly `**`; `\d*` as `*` is wider than it.
    const w = wildcard(canCrossSlash(node));
    const exact =
      node.t === 'any' || (node.t === 'set' && node.chars === null && node.slash && !node.isSpace);
    if (q.min >= 1 && base.list.length === 1) return { list: [`${base.list[0]}${w}`], widened: !exact };
    return { list: [w], widened: !exact };
  }
  const out = new Set<string>();
  let current = [''];
  for (let n = 0; n <= q.max; n++) {
    if (n >= q.min) for (const s of current) out.add(s);
    const next: string[] = [];
    for (const a of current) for (const b of base.list) next.push(a + b);
    current = next;
  }
  return { list: [...out], widened: base.widened };
}

function finish(raw: string): string | undefined {
  // Adjacent wildcards: any run with a cross-segment one is one `**`; segment ones merge.
  let glob = raw
    .replace(/[\u0001\u0002]*\u0002[\u0001\u0002]*/g, ANY)
    .replace(/\u0001+/g, SEG)
    .replace(/\u0002/g, '**')
    .replace(/\u0001/g, '*');
  if (glob.startsWith('**')) glob = `/${glob}`;
  return glob.startsWith('/') ? glob : undefined;
}

/** A failregex's path as jailkeeper globs, or why it is not a path. */
export type PathGlobs =
  | { readonly ok: true; readonly globs: string[] | null; readonly widened: boolean }
  | { readonly ok: false; readonly target: string };

/**
 * Expands the nodes of a request path into globs: alternatives and optional parts are listed
 * exactly (up to {@link MAX_GLOBS}), a class or a repetition becomes `*` (one segment) or `**`
 * (any depth). `globs` is null when the path matches anything.
 */
export function pathGlobs(nodes: readonly RegexNode[]): PathGlobs {
  const { list, widened } = sequence(nodes);
  const globs: string[] = [];
  for (const raw of list) {
    const glob = finish(raw);
    if (glob === undefined)
      return { ok: false, target: raw.replace(/\u0002/g, '**').replace(/\u0001/g, '*') };
    if (glob === '/**') return { ok: true, globs: null, widened };
    if (!globs.includes(glob)) globs.push(glob);
  }
  return { ok: true, globs, widened };
}

const GENERIC_UA = /^(?:mozilla\/?[\d.]*|compatible;?|\(|\))$/i;

function bestRun(nodes: readonly RegexNode[]): string | undefined {
  const runs: string[] = [];
  let run = '';
  for (const node of nodes) {
    if (isLit(node)) run += node.c;
    else {
      runs.push(run);
      run = '';
    }
  }
  runs.push(run);
  let best: string | undefined;
  for (const raw of runs) {
    const text = raw.trim();
    if (text.length < 3 || GENERIC_UA.test(text)) continue;
    if (best === undefined || text.length > best.length) best = text;
  }
  return best;
}

/** A user-agent condition as jailkeeper substrings (case-insensitive), and whether that is exact. */
export interface AgentStrings {
  readonly list: string[];
  /** The entries that stand for an alternative that was not a plain string (its most telling part). */
  readonly approximated: string[];
}

/** Reads the substrings a user-agent field's regex asks for. Empty when it asks for nothing. */
export function agentStrings(nodes: readonly RegexNode[]): AgentStrings {
  let from = 0;
  let to = nodes.length;
  while (from < to && (isAnyRun(nodes[from]) || nodes[from]?.t === 'anchor')) from++;
  while (to > from && (isAnyRun(nodes[to - 1]) || nodes[to - 1]?.t === 'anchor')) to--;
  const core = nodes.slice(from, to);
  if (core.length === 0) return { list: [], approximated: [] };
  const alts = core.length === 1 ? plainGroup(core[0]) : undefined;
  if (alts !== undefined) {
    const list: string[] = [];
    const approximated: string[] = [];
    for (const alt of alts) {
      const inner = agentStrings(alt);
      approximated.push(...inner.approximated);
      for (const s of inner.list) if (!list.includes(s)) list.push(s);
    }
    return { list, approximated };
  }
  const text = literalText(core);
  if (text !== undefined) return { list: text.trim() === '' ? [] : [text], approximated: [] };
  const run = bestRun(core);
  return { list: run === undefined ? [] : [run], approximated: run === undefined ? [] : [run] };
}
