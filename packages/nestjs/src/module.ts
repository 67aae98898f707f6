import { Jailkeeper } from '@jailkeeper/core';
import {
  type DynamicModule,
  Inject,
  type NestModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { JailkeeperBinding } from './binding.js';
import {
  JAILKEEPER_OPTIONS,
  type JailkeeperModuleAsyncOptions,
  type JailkeeperModuleOptions,
} from './options.js';
import { JailkeeperService } from './service.js';

/**
 * jailkeeper for NestJS, on @nestjs/platform-express or @nestjs/platform-fastify: banned clients
 * are refused before Nest's body parsers, middleware, guards and handlers; responses (exceptions
 * Nest turned into 401/403/404 included) are counted under the route Nest registered. Global:
 * `Jailkeeper` and `JailkeeperService` are injectable everywhere.
 * @example
 * \@Module({ imports: [JailkeeperModule.forRoot({ keeper: { jails: { login: { statuses: [401], paths: ['/auth/login'] } } } })] })
 * export class AppModule {}
 */
export class JailkeeperModule implements NestModule, OnApplicationBootstrap, OnApplicationShutdown {
  readonly #binding: JailkeeperBinding;
  readonly #host: HttpAdapterHost;

  constructor(binding: JailkeeperBinding, host: HttpAdapterHost) {
    this.#binding = binding;
    this.#host = host;
  }

  /** The module with these options. */
  static forRoot(options: JailkeeperModuleOptions): DynamicModule {
    return JailkeeperModule.forRootAsync({ useFactory: () => options });
  }

  /**
   * The module with options from a factory, e.g. a ConfigService's:
   * `forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: (c) => ({ keeper: c.get('jailkeeper') }) })`.
   */
  static forRootAsync(options: JailkeeperModuleAsyncOptions): DynamicModule {
    return {
      module: JailkeeperModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        { provide: JAILKEEPER_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        {
          provide: JailkeeperBinding,
          useFactory: JailkeeperBinding.create,
          inject: [JAILKEEPER_OPTIONS, HttpAdapterHost, ModulesContainer],
        },
        { provide: Jailkeeper, useFactory: (b: JailkeeperBinding) => b.keeper, inject: [JailkeeperBinding] },
        {
          provide: JailkeeperService,
          useFactory: (b: JailkeeperBinding) => new JailkeeperService(b),
          inject: [JailkeeperBinding],
        },
      ],
      exports: [Jailkeeper, JailkeeperService],
    };
  }

  /** Before Nest declares its routes: the platform adapter in place, or its setup error thrown. */
  async configure(): Promise<void> {
    await this.#binding.mounted;
  }

  onApplicationBootstrap(): void {
    this.#binding.bootstrap(this.#host);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.#binding.shutdown();
  }
}

// Constructor injection without emitDecoratorMetadata (the package is built without decorators).
Inject(JailkeeperBinding)(JailkeeperModule, undefined as never, 0);
Inject(HttpAdapterHost)(JailkeeperModule, undefined as never, 1);
