import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JailkeeperOptions } from '@jailkeeper/core';
import { configWarnings, resolveOptions } from '@jailkeeper/core/operator';
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
export function checkConfig(input: Record<string, unknown>): ConfigProblem[] {
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
  for (const key of Object.keys(input)) {
    if (key === 'jails' || key === 'recidive' || key === 'defaults') continue;
    add(attempt({ jails: NAMES_JAILS.has(key) ? probeJails : { probe: PROBE_JAIL }, [key]: input[key] }));
  }
  for (const [key, value] of [
    ['defaults', input.defaults],
    ['recidive', input.recidive],
  ] as const) {
    if (value === undefined) continue;
    if (!isObject(value)) add(attempt({ jails: { probe: PROBE_JAIL }, [key]: value }));
    else
      for (const [option, v] of Object.entries(value))
        add(
          attempt({
            jails: key === 'recidive' && option === 'jails' ? probeJails : { probe: PROBE_JAIL },
            [key]: { [option]: v },
          }),
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
          add(attempt({ jails: { [name]: own } }));
        }
      }
      add(whole);
    }
  }
  add(attempt(input));
  if (problems.length === 0) {
    // A valid config may still be doubtful: what the keeper would warn about at startup.
    for (const w of configWarnings(resolveOptions(input as unknown as JailkeeperOptions))) add(w);
  }
  return problems;
}
