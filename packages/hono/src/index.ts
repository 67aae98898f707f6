export type { RefusalInfo } from '@jailkeeper/core/adapter';
export { jailkeeper } from './middleware.js';
export type {
  JailkeeperContext,
  JailkeeperEnv,
  JailkeeperHonoOptions,
  JailkeeperMiddleware,
  RouteConfig,
} from './types.js';
