export type { RefusalInfo } from '@jailkeeper/core/adapter';
export {
  type JailkeeperExpressOptions,
  type JailkeeperGuardOptions,
  type JailkeeperMiddleware,
  jailkeeper,
  type RouteConfig,
} from './middleware.js';
