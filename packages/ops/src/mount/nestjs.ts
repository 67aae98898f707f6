import { Jailkeeper } from '@jailkeeper/core';
import { checkKeys, invalid } from '@jailkeeper/core/adapter';
import { type DynamicModule, Inject, type NestModule } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { AdminOptions } from '../admin.js';
import { jailkeeperAdmin as expressAdmin } from './express.js';
import { jailkeeperAdmin as fastifyAdmin } from './fastify.js';

/** Options of `JailkeeperAdminModule.register()`: the admin options and where to mount it. */
export interface JailkeeperAdminModuleOptions extends AdminOptions {
  /** Where the admin API answers, e.g. `'/_jailkeeper'` (Nest's global prefix does not apply). */
  path: string;
}

const ADMIN_OPTIONS = 'jailkeeper:admin-options';

/**
 * The admin API (and with `console: true` the operators' console) of the keeper of
 * `JailkeeperModule`, mounted on the platform under `path`, behind its bearer token: outside
 * Nest's guards and pipes, after jailkeeper's own middleware, so that a caller guessing the
 * token is counted and banned like any other failing client.
 * @example
 * JailkeeperAdminModule.register({ path: '/_jailkeeper', token: process.env.JAILKEEPER_TOKEN ?? '', console: true })
 */
export class JailkeeperAdminModule implements NestModule {
  #mounted: Promise<void> = Promise.resolve();

  constructor(options: JailkeeperAdminModuleOptions, keeper: Jailkeeper, host: HttpAdapterHost) {
    const { path, ...admin } = checkKeys('JailkeeperAdminModule options', options, {
      path: true,
      token: true,
      allowRemote: true,
      metrics: true,
      lockout: true,
      console: true,
    }) as unknown as JailkeeperAdminModuleOptions;
    if (typeof path !== 'string' || !path.startsWith('/'))
      invalid('JailkeeperAdminModule options.path', 'a path like "/_jailkeeper"', path);
    host.init$.subscribe(() => {
      const adapter = host.httpAdapter;
      try {
        if (adapter.getType() === 'fastify') {
          const plugin = adapter.getInstance().register(fastifyAdmin, { ...admin, keeper, prefix: path });
          this.#mounted = Promise.resolve(plugin).then(() => {});
        } else adapter.use(path, expressAdmin(keeper, admin));
      } catch (error) {
        this.#mounted = Promise.reject(error);
      }
      this.#mounted.catch(() => {});
    });
  }

  /** Mounts the admin API under `options.path`. Import `JailkeeperModule` too. */
  static register(options: JailkeeperAdminModuleOptions): DynamicModule {
    return { module: JailkeeperAdminModule, providers: [{ provide: ADMIN_OPTIONS, useValue: options }] };
  }

  async configure(): Promise<void> {
    await this.#mounted;
  }
}

Inject(ADMIN_OPTIONS)(JailkeeperAdminModule, undefined as never, 0);
Inject(Jailkeeper)(JailkeeperAdminModule, undefined as never, 1);
Inject(HttpAdapterHost)(JailkeeperAdminModule, undefined as never, 2);
