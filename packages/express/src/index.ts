export { jailkeeperAdmin } from './admin.js';
export {
  type JailkeeperExpressOptions,
  type JailkeeperMiddleware,
  jailkeeper,
  type RouteConfig,
} from './middleware.js';
