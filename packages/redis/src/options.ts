import { type Duration, JailkeeperConfigError, parseDuration } from '@jailkeeper/core';
import { checkKeys } from '@jailkeeper/core/adapter';
import type { Cluster, Redis } from 'ioredis';

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster` the app already has. The store listens to its `error` events
   * (an outage is then logged once through jailkeeper, not as ioredis' "Unhandled error event").
   */
  client: Redis | Cluster;
  /** Prepended to every key and to the pub/sub channel. Letters, digits, `:`, `_`, `-`. @default 'jk:' */
  prefix?: string;
  /** The most a call to Redis may take before the store treats Redis as down, whatever the client's own settings. @default 100 (ms) */
  timeout?: Duration;
  /**
   * While Redis is unreachable: `'local'` counts and bans in this process (and writes its bans back
   * to Redis on recovery); `'allow'` counts nothing; `'deny'` also counts locally and refuses every
   * client not in ignoreIp until Redis answers (fail closed). Known bans stay enforced in every case.
   * @default 'local'
   */
  onStoreError?: 'local' | 'allow' | 'deny';
  /**
   * How often the store checks for changes it missed and for data Redis lost: one read of the
   * shards' versions (1,024 short keys); only shards that changed unseen are read again.
   * @default '1s'
   */
  reconcileInterval?: Duration;
  /** How often an unreachable Redis is probed (the client's own reconnection also triggers a probe). @default '1s' */
  probeInterval?: Duration;
  /**
   * How long start-up waits for Redis to answer (the first connection, then the load of the
   * active bans) before it goes on degraded. @default '5s'
   */
  startTimeout?: Duration;
  /**
   * `false` for tools that only act on the store (the CLI): no bans are loaded or followed, no
   * jail names registered. An app's keeper needs them. @default true
   */
  loadBans?: boolean;
}

/** The options after validation. */
export interface ResolvedRedisOptions {
  readonly client: Redis | Cluster;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly onStoreError: 'local' | 'allow' | 'deny';
  readonly reconcileMs: number;
  readonly probeMs: number;
  readonly startMs: number;
  readonly loadBans: boolean;
}

const OPTION_KEYS = {
  client: true,
  prefix: true,
  timeout: true,
  onStoreError: true,
  reconcileInterval: true,
  probeInterval: true,
  startTimeout: true,
  loadBans: true,
} as const;

function ms(value: unknown, path: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (parsed === undefined || parsed <= 0) {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_DURATION',
      path,
      `createRedisStore options.${path} must be a positive duration (ms or "100ms"); received ${JSON.stringify(value)}.`,
    );
  }
  return parsed;
}

/** Validates the options once, naming the option at fault. */
export function resolveRedisOptions(options: RedisStoreOptions): ResolvedRedisOptions {
  const input = checkKeys('createRedisStore options', options, OPTION_KEYS);
  const client = input.client as Redis | undefined;
  if (client === undefined || client === null || typeof client.defineCommand !== 'function') {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      'client',
      'createRedisStore options.client must be an ioredis Redis or Cluster instance.',
    );
  }
  const prefix = (input.prefix as string | undefined) ?? 'jk:';
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9:_-]{0,64}$/.test(prefix)) {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      'prefix',
      `createRedisStore options.prefix must be up to 64 letters, digits, ":", "_" or "-"; received ${JSON.stringify(prefix)}.`,
    );
  }
  if (input.loadBans !== undefined && typeof input.loadBans !== 'boolean') {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      'loadBans',
      `createRedisStore options.loadBans must be true or false; received ${JSON.stringify(input.loadBans)}.`,
    );
  }
  const policy = input.onStoreError ?? 'local';
  if (policy !== 'local' && policy !== 'allow' && policy !== 'deny') {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      'onStoreError',
      `createRedisStore options.onStoreError must be "local", "allow" or "deny"; received ${JSON.stringify(policy)}.`,
    );
  }
  return Object.freeze({
    client,
    prefix,
    timeoutMs: ms(input.timeout, 'timeout', 100),
    onStoreError: policy,
    reconcileMs: ms(input.reconcileInterval, 'reconcileInterval', 1000),
    probeMs: ms(input.probeInterval, 'probeInterval', 1000),
    startMs: ms(input.startTimeout, 'startTimeout', 5000),
    loadBans: input.loadBans === undefined ? true : input.loadBans === true,
  });
}
