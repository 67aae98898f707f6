import type { Server } from 'node:http';
import { createJailkeeper, type Jailkeeper, JailkeeperError, type JailkeeperOptions } from '@jailkeeper/core';
import {
  type AdapterKit,
  type ClientIdentity,
  checkKeys,
  createAdapterKit,
  invalid,
} from '@jailkeeper/core/adapter';
import type { JailkeeperMiddleware } from '@jailkeeper/express';
import { type HttpAdapterHost, MetadataScanner, type ModulesContainer } from '@nestjs/core';
import { JAILKEEPER_ROUTE } from './decorators.js';
import type { JailkeeperModuleOptions } from './options.js';

const KEYS = {
  keeper: true,
  block: true,
  response: true,
  retryAfter: true,
  onRefused: true,
  skip: true,
  guard: true,
} as const;
/** @nestjs/platform-fastify's `@RouteConfig()` key: Nest hands it to Fastify as the route's config. */
const FASTIFY_ROUTE_CONFIG = '__fastify_route_config__';
const AT = 'JailkeeperModule options';

type Guard = { upgrade?: boolean; connection?: boolean } | false;
/** The platform adapters that are installed: optional peer dependencies, one per Nest platform. */
type Platforms = {
  express: typeof import('@jailkeeper/express') | undefined;
  fastify: typeof import('@jailkeeper/fastify') | undefined;
};

/** Loads an optional package: undefined when it is not installed, its error when it fails to load. */
async function optional<T>(name: string, load: () => Promise<T>): Promise<T | undefined> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const missing = new RegExp(`^Cannot find (package|module) '${name}'`);
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      missing.test(String((error as Error).message))
    )
      return undefined;
    throw error;
  }
}
type FastifyRequestLike = {
  jailkeeper?: {
    client?: ClientIdentity;
    fail(o?: object): boolean;
    account(name: unknown): Promise<boolean>;
  };
};

/**
 * The module's work, independent of Nest's lifecycle: it owns the keeper, puts the Express
 * middleware or the Fastify plugin under Nest as soon as Nest has its HTTP adapter (before Nest's
 * body parsers, middleware and routes), and hands decorator configs to the platform's router.
 */
export class JailkeeperBinding {
  readonly keeper: Jailkeeper;
  /** Resolves once the platform's adapter is in place (the Fastify plugin loaded); rejects on bad config. */
  mounted: Promise<void>;
  readonly #owned: boolean;
  readonly #kit: AdapterKit;
  readonly #adapterOptions: Record<string, unknown>;
  readonly #guard: Guard;
  readonly #platforms: Platforms;
  #platform: 'express' | 'fastify' | undefined;
  #express: JailkeeperMiddleware | undefined;
  #unguard: (() => void) | undefined;

  private constructor(
    keeper: Jailkeeper,
    owned: boolean,
    options: Record<string, unknown>,
    platforms: Platforms,
  ) {
    this.keeper = keeper;
    this.#platforms = platforms;
    this.#owned = owned;
    const { keeper: _, guard, ...adapterOptions } = options;
    this.#adapterOptions = adapterOptions;
    this.#guard = guard === undefined ? {} : (guard as Guard);
    if (this.#guard !== false) checkKeys(`${AT}.guard`, this.#guard, { upgrade: true, connection: true });
    this.#kit = createAdapterKit({
      keeper,
      keeperAt: `${AT}.keeper`,
      options: adapterOptions,
      optionsAt: AT,
      // Validation only: the platform's adapter writes the refusals.
      writer: { drop() {}, status() {}, header() {}, send() {} },
    });
    this.mounted = new Promise(() => {}); // until Nest has an HTTP adapter
  }

  /** Validates the options, creates the keeper when given its options, and waits for its store. */
  static async create(
    input: JailkeeperModuleOptions,
    host: HttpAdapterHost,
    modules: ModulesContainer,
  ): Promise<JailkeeperBinding> {
    const options = checkKeys(AT, input, KEYS);
    const given = options.keeper as Partial<Jailkeeper> | undefined;
    if (given === undefined || given === null || typeof given !== 'object')
      invalid(`${AT}.keeper`, 'a keeper from createJailkeeper() or its options', given);
    const owned = typeof given.check !== 'function';
    const keeper = owned ? createJailkeeper(given as JailkeeperOptions) : (given as Jailkeeper);
    // Whichever platform adapters the app installed (it needs its own platform's, see #mount).
    const [express, fastify] = await Promise.all([
      optional('@jailkeeper/express', () => import('@jailkeeper/express')),
      optional('@jailkeeper/fastify', () => import('@jailkeeper/fastify')),
    ]);
    await keeper.ready;
    const binding = new JailkeeperBinding(keeper, owned, options, { express, fastify });
    // Fires at once when Nest already has its adapter (NestFactory.create), else when it gets it
    // (Test.createTestingModule().createNestApplication()): in both, before init() builds the app.
    host.init$.subscribe(() => binding.#mount(host, modules));
    return binding;
  }

  #mount(host: HttpAdapterHost, modules: ModulesContainer): void {
    try {
      const adapter = host.httpAdapter;
      const platform = adapter.getType();
      if (platform !== 'express' && platform !== 'fastify')
        invalid('the Nest HTTP platform', '@nestjs/platform-express or @nestjs/platform-fastify', platform);
      this.#platform = platform;
      const adapterPackage = this.#platforms[platform];
      if (adapterPackage === undefined) {
        throw new JailkeeperError(
          'JK_ERR_MISSING_PACKAGE',
          `the Nest app runs on @nestjs/platform-${platform}, and @jailkeeper/nestjs mounts @jailkeeper/${platform} there: install it (npm install @jailkeeper/${platform})`,
        );
      }
      this.#applyRouteConfigs(modules);
      if ('jailkeeper' in adapterPackage) {
        this.#express = adapterPackage.jailkeeper(this.keeper, {
          ...this.#adapterOptions,
          routeConfigOf: (handler) => Reflect.getMetadata(JAILKEEPER_ROUTE, handler),
        });
        adapter.use(this.#express);
        this.mounted = Promise.resolve();
      } else {
        const options = { ...this.#adapterOptions, keeper: this.keeper, guard: this.#guard };
        // Awaiting the registration loads the plugin now, so its onRoute hook sees Nest's routes.
        this.mounted = Promise.resolve(
          adapter.getInstance().register(adapterPackage.jailkeeperPlugin, options),
        ).then(() => {});
      }
    } catch (error) {
      this.mounted = Promise.reject(error);
    }
    this.mounted.catch(() => {}); // reported by JailkeeperModule.configure(), during app.init()
  }

  /**
   * Validates every decorator config at startup, naming the handler, and gives each handler its
   * controller's config when it has none of its own. Nest copies a handler's metadata to the
   * function it registers with the router: Express's middleware reads it from there, and on
   * Fastify it joins the route's config (`config.jailkeeper`, as the plugin reads it).
   */
  #applyRouteConfigs(modules: ModulesContainer): void {
    const scanner = new MetadataScanner();
    for (const module of modules.values()) {
      for (const wrapper of module.controllers.values()) {
        const type = wrapper.metatype as (Function & { prototype: Record<string, unknown> }) | null;
        if (typeof type !== 'function' || type.prototype === undefined) continue;
        const onClass = Reflect.hasMetadata(JAILKEEPER_ROUTE, type);
        for (const name of scanner.getAllMethodNames(type.prototype)) {
          const handler = type.prototype[name] as object;
          const own = Reflect.hasOwnMetadata(JAILKEEPER_ROUTE, handler);
          if (!own && !onClass) continue;
          const config = Reflect.getMetadata(JAILKEEPER_ROUTE, own ? handler : type);
          this.#kit.compileRoute(config, `@JailkeeperRoute() on ${type.name}.${name}`);
          if (!own) Reflect.defineMetadata(JAILKEEPER_ROUTE, config, handler);
          if (this.#platform === 'fastify') {
            const routeConfig = Reflect.getMetadata(FASTIFY_ROUTE_CONFIG, handler);
            Reflect.defineMetadata(FASTIFY_ROUTE_CONFIG, { ...routeConfig, jailkeeper: config }, handler);
          }
        }
      }
    }
  }

  /** After init: on Express, guard the HTTP server (the Fastify plugin guards its own). */
  bootstrap(host: HttpAdapterHost): void {
    if (this.#express !== undefined && this.#guard !== false && this.#unguard === undefined) {
      this.#unguard = this.#express.guard(host.httpAdapter.getHttpServer() as Server, this.#guard);
    }
  }

  async shutdown(): Promise<void> {
    this.#unguard?.();
    if (this.#owned) await this.keeper.close();
  }

  client(req: unknown): ClientIdentity | undefined {
    if (this.#express !== undefined) return this.#express.client(req as never);
    return (req as FastifyRequestLike | undefined)?.jailkeeper?.client;
  }

  account(req: unknown, name: unknown): Promise<boolean> {
    if (this.#express !== undefined) return this.#express.account(req as never, name);
    return (req as FastifyRequestLike | undefined)?.jailkeeper?.account(name) ?? Promise.resolve(true);
  }

  fail(req: unknown, options?: { jails?: string[] }): boolean {
    if (options?.jails !== undefined) this.#kit.failJails(options.jails);
    if (this.#express !== undefined) return this.#express.fail(req as never, options);
    return (req as FastifyRequestLike | undefined)?.jailkeeper?.fail(options) ?? false;
  }
}
