export { jailkeeperAdmin } from './admin.js';
export { jailkeeper } from './middleware.js';
export type {
  JailkeeperContext,
  JailkeeperEnv,
  JailkeeperHonoOptions,
  JailkeeperMiddleware,
  RouteConfig,
} from './types.js';
