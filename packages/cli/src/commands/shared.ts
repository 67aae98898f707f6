import { rename, writeFile } from 'node:fs/promises';
import type { parseArgs } from 'node:util';
import type { JailkeeperOptions } from '@jailkeeper/core';
import { type ResolvedOptions, resolveOptions } from '@jailkeeper/core/operator';
import type { Backend } from '../backend.js';
import { loadConfig } from '../config.js';
import { CliError, EXIT } from '../errors.js';

/** Where output goes: the CLI's own streams, or a test's buffers. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly env: Record<string, string | undefined>;
  readonly isTTY: boolean;
}

/** Every option of every command: `main` parses them all at once, each command reads its own. */
export const OPTIONS = {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  jail: { type: 'string' },
  for: { type: 'string' },
  reason: { type: 'string' },
  all: { type: 'boolean' },
  format: { type: 'string' },
  name: { type: 'string' },
  out: { type: 'string' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  exec: { type: 'string' },
  filters: { type: 'string' },
  'no-progress': { type: 'boolean' },
  explain: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'allow-remote': { type: 'string' },
  routes: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

/** Wrong arguments: exit code 2, with a pointer to --help. */
export function usage(message: string): never {
  throw new CliError(EXIT.usage, `${message}\nRun jailkeeper --help for the commands.`);
}

/** The jail names, ignore list and IPv6 grouping of a config file, and its thresholds when it resolves. */
export async function configFacts(values: Values): Promise<{
  jails: string[];
  ignoreIp: string[];
  ipv6Subnet: number | undefined;
  resolved: ResolvedOptions | undefined;
}> {
  if (values.config === undefined)
    return { jails: [], ignoreIp: [], ipv6Subnet: undefined, resolved: undefined };
  const config = await loadConfig(values.config);
  let resolved: ResolvedOptions | undefined;
  try {
    resolved = resolveOptions(config as unknown as JailkeeperOptions);
  } catch {
    resolved = undefined; // check-config says why; the console then shows names without thresholds
  }
  return {
    jails: Object.keys((config.jails ?? {}) as object),
    ignoreIp: Array.isArray(config.ignoreIp) ? (config.ignoreIp as string[]) : [],
    ipv6Subnet: typeof config.ipv6Subnet === 'number' ? config.ipv6Subnet : undefined,
    resolved,
  };
}

/** The backend the flags name: an app's admin API (--url), else a Redis store (--redis or REDIS_URL). */
export async function openBackend(values: Values, io: Io): Promise<Backend> {
  const url = values.url;
  const redis = values.redis ?? (url === undefined ? io.env.REDIS_URL : undefined);
  if (url !== undefined && values.redis !== undefined) usage('Give --redis or --url, not both.');
  if (url !== undefined) {
    const token = values.token ?? io.env.JAILKEEPER_TOKEN;
    if (token === undefined || token === '')
      usage('--url needs the admin token: --token or JAILKEEPER_TOKEN.');
    // Each backend is loaded when named: the CLI starts without ioredis for --url and for the
    // commands on files (a wrong argument is answered in about 0.2 s, not 0.45).
    const { HttpBackend } = await import('../http-backend.js');
    return new HttpBackend(url, token);
  }
  if (redis === undefined)
    usage("Say where the bans are: --redis URL (or REDIS_URL), or --url of the app's admin API.");
  const prefix = values.prefix ?? 'jk:';
  const { jails, ignoreIp, ipv6Subnet } = await configFacts(values);
  const { RedisBackend } = await import('../redis-backend.js');
  return RedisBackend.open(redis, prefix, { jails, ignoreIp, ipv6Subnet });
}

/** A value as indented JSON on stdout, for --json. */
export function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
