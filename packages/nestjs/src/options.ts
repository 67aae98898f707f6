import type { Jailkeeper, JailkeeperOptions } from '@jailkeeper/core';
import type { AdapterOptions } from '@jailkeeper/core/adapter';
import type { FactoryProvider, ModuleMetadata } from '@nestjs/common';

/**
 * Options of `JailkeeperModule.forRoot()`: see the options table in the README. `onRefused` and
 * `skip` receive the platform's request and response (Express's, or Fastify's request and reply).
 */
// biome-ignore lint/suspicious/noExplicitAny: the request and response of whichever platform runs Nest
export interface JailkeeperModuleOptions extends AdapterOptions<any, any> {
  /**
   * A keeper from createJailkeeper(), or its options: the module then creates the keeper, waits
   * for its store, and closes it when the app shuts down.
   */
  keeper: Jailkeeper | JailkeeperOptions;
  /**
   * Guard the HTTP server below Nest: `upgrade` refuses banned clients' upgrade requests
   * (WebSocket gateways), `connection` drops banned direct peers before HTTP parsing.
   * @default { upgrade: true, connection: false }
   */
  guard?: { upgrade?: boolean; connection?: boolean } | false;
}

/** Options of `JailkeeperModule.forRootAsync()`: the options from a factory (a ConfigService). */
export interface JailkeeperModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  // biome-ignore lint/suspicious/noExplicitAny: whatever the factory injects, as Nest types it
  useFactory: (...args: any[]) => JailkeeperModuleOptions | Promise<JailkeeperModuleOptions>;
}

/** The injection token of the module's options. */
export const JAILKEEPER_OPTIONS = 'jailkeeper:options';
