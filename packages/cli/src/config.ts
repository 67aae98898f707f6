import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JailkeeperOptions } from '@jailkeeper/core';
import {
  configWarnings,
  resolveOptions,
  uncoveredMessage,
  uncoveredPatterns,
} from '@jailkeeper/core/operator';
import { CliError, EXIT } from './errors.js';

/** One problem `check-config` found. */
export interface ConfigProblem {
  readonly code: string;
  readonly option: string;
  readonly message: string;
}

/**
 * `import()` as Node runs it, in both builds: compiled to CommonJS, tsc would turn an `import()`
 * into a `require()`, which cannot load an ES module config (nor take a file URL).
 */
const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;

/**
 * Loads a jailkeeper configuration: a `.json` file, or a `.js`/`.mjs`/`.cjs` module whose default
 * export (or `config` export) is the options object.
 */
export async function loadConfig(file: string): Promise<Record<string, unknown>> {
  const path = resolve(file);
  let value: unknown;
  try {
    if (extname(path) === '.json') {
      value = JSON.parse(await readFile(path, 'utf8'));
    } else {
      const mod = (await importModule(pathToFileURL(path).href)) as { default?: unknown; config?: unknown };
      value = mod.default ?? mod.config;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new CliError(EXIT.usage, `No configuration file at ${path}.`);
    }
    // A module that throws a jailkeeper error as it loads (presets.logins) says which code and option.
    const jk = error as { code?: unknown; option?: unknown };
    if (typeof jk.code === 'string' && jk.code.startsWith('JK_ERR_')) {
      throw new CliError(
        EXIT.problems,
        `${path} threw as it loaded: ${(error as Error).message}`,
        jk.code,
        typeof jk.option === 'string' ? jk.option : undefined,
      );
    }
    throw new CliError(
      EXIT.problems,
      `${path} could not be read: ${(error as Error).message}`,
      'JK_ERR_INVALID_OPTION',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(
      EXIT.problems,
      `${path} must hold (or default-export) the jailkeeper options object, { jails: { ... } }.`,
      'JK_ERR_INVALID_OPTION',
    );
  }
  return value as Record<string, unknown>;
}

function attempt(options: Record<string, unknown>): ConfigProblem | undefined {
  try {
    resolveOptions(options as unknown as JailkeeperOptions);
    return undefined;
  } catch (error) {
    const e = error as { code?: string; option?: string; message: string };
    return { code: e.code ?? 'JK_ERR_INVALID_OPTION', option: e.option ?? '', message: e.message };
  }
}

/** `.statuses[2]` as ['statuses', 2]; undefined for what is not keys and indexes. */
function steps(rest: string): Array<string | number> | undefined {
  const out: Array<string | number> = [];
  for (const [, key, index] of rest.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) out.push(key ?? Number(index));
  return out.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('') === rest ? out : undefined;
}

/** `value` with the array element at `path` taken out (copied along the way), or undefined. */
function without(value: unknown, path: Array<string | number>): unknown {
  const [step, ...rest] = path;
  if (step === undefined) return undefined;
  if (rest.length === 0) {
    if (typeof step !== 'number') return undefined;
    // A list in one string, as Express's trust proxy takes it: "loopback, 10.0.0.0/8".
    if (typeof value === 'string') {
      const parts = value.split(',');
      return parts.length < 2 ? undefined : parts.filter((_, i) => i !== step).join(',');
    }
    if (!Array.isArray(value) || value.length < 2) return undefined;
    return value.filter((_, i) => i !== step);
  }
  if (typeof step === 'number' ? !Array.isArray(value) : !isObject(value)) return undefined;
  const inner = without((value as Record<string | number, unknown>)[step], rest);
  if (inner === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v, i) => (i === step ? inner : v));
  return { ...(value as Record<string, unknown>), [step]: inner };
}

/**
 * Every problem of one option's value, where the validation stops at the first bad element of a
 * list: the element it names is taken out and the value checked again, until it passes (each
 * problem keeps the element's index in the file). `wrap` puts the value where it belongs in a
 * configuration; `at` is its option path (`trustedProxies`, `jails.login`).
 */
function attemptEach(
  at: string,
  value: unknown,
  wrap: (value: unknown) => Record<string, unknown>,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  let current = value;
  // Where each element of each list now stands in the file: list path -> original indexes.
  const origins = new Map<string, number[]>();
  for (let guard = 0; guard < 1000; guard++) {
    const problem = attempt(wrap(current));
    if (problem === undefined) break;
    const rest = problem.option.startsWith(at) ? steps(problem.option.slice(at.length)) : undefined;
    const index = rest?.at(-1);
    if (rest === undefined || typeof index !== 'number') {
      problems.push(problem);
      break;
    }
    const list = problem.option.slice(0, problem.option.lastIndexOf('['));
    const next = without(current, rest);
    const length = (() => {
      let v: unknown = current;
      for (const s of rest.slice(0, -1)) v = (v as Record<string | number, unknown>)[s];
      return Array.isArray(v) ? v.length : typeof v === 'string' ? v.split(',').length : 0;
    })();
    const held = origins.get(list) ?? Array.from({ length }, (_, i) => i);
    const original = held[index] ?? index;
    const renamed = `${list}[${original}]`;
    problems.push({
      ...problem,
      option: renamed,
      message: problem.message.split(problem.option).join(renamed),
    });
    if (next === undefined) break;
    held.splice(index, 1);
    origins.set(list, held);
    current = next;
  }
  return problems;
}

const PROBE_JAIL = { statuses: [401] };
/** Options whose validity depends on the jails (they name them). */
const NAMES_JAILS = new Set(['verifiedCrawlers']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every problem of a configuration, each with its code, like `fail2ban-server --test`; for a
 * valid one, the warnings the keeper would give at startup (`JK_WRN_*`). The
 * validation stops at the first mistake, so each option is checked on its own: every top-level
 * option, every key of the defaults, of the recidive jail and of each jail (with what it depends
 * on), then each jail whole and the whole file, for what only shows together.
 */
export function checkConfig(
  input: Record<string, unknown>,
  check: { routes?: readonly string[]; ignoreCase?: boolean } = {},
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  const add = (p: ConfigProblem | undefined) => {
    if (p === undefined) return;
    const key = `${p.code} ${p.option}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(p);
  };
  const jails = isObject(input.jails) ? input.jails : undefined;
  // A valid stand-in for each jail, so that options naming jails can be checked on their own.
  const standIns = Object.fromEntries(Object.keys(jails ?? {}).map((name) => [name, PROBE_JAIL]));
  const probeJails = Object.keys(standIns).length > 0 ? standIns : { probe: PROBE_JAIL };
  const addAll = (found: ConfigProblem[]) => {
    for (const p of found) add(p);
  };
  for (const key of Object.keys(input)) {
    if (key === 'jails' || key === 'recidive' || key === 'defaults') continue;
    const jailsFor = NAMES_JAILS.has(key) ? probeJails : { probe: PROBE_JAIL };
    addAll(attemptEach(key, input[key], (v) => ({ jails: jailsFor, [key]: v })));
  }
  for (const [key, value] of [
    ['defaults', input.defaults],
    ['recidive', input.recidive],
  ] as const) {
    if (value === undefined) continue;
    if (!isObject(value)) add(attempt({ jails: { probe: PROBE_JAIL }, [key]: value }));
    else
      for (const [option, v] of Object.entries(value))
        addAll(
          attemptEach(`${key}.${option}`, v, (each) => ({
            jails:
              key === 'recidive' && option === 'jails'
                ? probeJails
                : // A jail's own statuses would hide the defaults' (they are read only where used).
                  { probe: key === 'defaults' && option === 'statuses' ? { paths: ['/probe'] } : PROBE_JAIL },
            [key]: { [option]: each },
          })),
        );
  }
  const defaultsOk =
    input.defaults === undefined ||
    attempt({ jails: { probe: PROBE_JAIL }, defaults: input.defaults }) === undefined;
  if (jails !== undefined) {
    for (const [name, jail] of Object.entries(jails)) {
      const defaults = defaultsOk && input.defaults !== undefined ? { defaults: input.defaults } : {};
      const whole = attempt({ jails: { [name]: jail }, ...defaults });
      if (whole === undefined) continue;
      if (isObject(jail)) {
        // Each option alone, with what it depends on when that is valid.
        const base: Record<string, unknown> = {};
        for (const dep of ['statuses', 'paths', 'userAgents', 'maxRetry']) {
          if (
            jail[dep] !== undefined &&
            attempt({ jails: { [name]: { ...PROBE_JAIL, [dep]: jail[dep] } } }) === undefined
          )
            base[dep] = jail[dep];
        }
        for (const [option, value] of Object.entries(jail)) {
          const own: Record<string, unknown> = { ...base, [option]: value };
          if (own.statuses === undefined && own.paths === undefined && own.userAgents === undefined)
            own.statuses = PROBE_JAIL.statuses;
          addAll(
            attemptEach(`jails.${name}.${option}`, value, (each) => ({
              jails: { [name]: { ...own, [option]: each } },
            })),
          );
        }
      }
      add(whole);
    }
  }
  add(attempt(input));
  if (problems.length === 0) {
    // A valid config may still be doubtful: what the keeper would warn about at startup.
    const resolved = resolveOptions(input as unknown as JailkeeperOptions);
    for (const w of configWarnings(resolved)) add(w);
    // Given the app's routes, what the adapters warn about at startup: a rule no route matches
    // while routes below it exist ('/ws' beside '/ws/:room').
    if (check.routes !== undefined)
      for (const u of uncoveredPatterns(resolved.jails, check.routes, check.ignoreCase ?? false))
        add({
          code: 'JK_WRN_PATTERN_MISSES_ROUTES',
          option: `jails.${u.jail}.${u.option}`,
          message: uncoveredMessage(u),
        });
  }
  return problems;
}

/**
 * The routes of a `--routes` file: a JSON array of route patterns, or one route a line, the
 * router's pattern (`/ws/:room`), optionally after its method (`GET /ws/:room`, as Fastify's
 * `printRoutes` and most route listings write it). Blank lines and `#` comments are skipped; a
 * line with no pattern starting with `/` is an error naming its line.
 */
export function parseRoutes(text: string, file: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(trimmed);
    } catch (error) {
      throw new CliError(EXIT.usage, `${file} is not a JSON array of routes: ${(error as Error).message}`);
    }
    if (!Array.isArray(list) || !list.every((r) => typeof r === 'string' && r.startsWith('/')))
      throw new CliError(EXIT.usage, `${file}: a JSON route list is an array of patterns starting with /.`);
    return list;
  }
  const routes: string[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const route = line.split(/\s+/).find((token) => token.startsWith('/'));
    if (route === undefined)
      throw new CliError(
        EXIT.usage,
        `${file}:${index + 1}: no route (a pattern starting with /) in ${JSON.stringify(raw)}.`,
      );
    routes.push(route);
  }
  return routes;
}
