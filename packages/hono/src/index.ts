export type { RefusalInfo } from '@jailkeeper/core/adapter';
export {
  type JailkeeperContext,
  type JailkeeperEnv,
  type JailkeeperHonoOptions,
  type JailkeeperMiddleware,
  jailkeeper,
  type RouteConfig,
} from './middleware.js';
