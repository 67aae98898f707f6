import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type JailkeeperOptions, resolveOptions } from '@jailkeeper/core';
import { CliError, EXIT } from './errors.js';

/** One problem `check-config` found. */
export interface ConfigProblem {
  readonly code: string;
  readonly option: string;
  readonly message: string;
}

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
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown; config?: unknown };
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

/**
 * Every problem of a configuration, each with its code, like `fail2ban-server --test`. The
 * validation stops at the first mistake, so each part is checked on its own: every top-level
 * option, the defaults, then every jail (with the defaults), then the whole.
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
  for (const key of Object.keys(input)) {
    if (key === 'jails' || key === 'recidive') continue;
    add(attempt({ jails: { probe: PROBE_JAIL }, [key]: input[key] }));
  }
  const defaultsOk =
    input.defaults === undefined ||
    attempt({ jails: { probe: PROBE_JAIL }, defaults: input.defaults }) === undefined;
  const jails = input.jails;
  if (typeof jails === 'object' && jails !== null && !Array.isArray(jails)) {
    for (const [name, jail] of Object.entries(jails)) {
      const problem = attempt({
        jails: { [name]: jail },
        ...(defaultsOk && input.defaults !== undefined ? { defaults: input.defaults } : {}),
      });
      add(problem);
    }
  }
  add(attempt(input));
  return problems;
}
