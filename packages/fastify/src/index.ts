export { type JailkeeperAdminOptions, jailkeeperAdmin } from './admin.js';
export {
  type JailkeeperFastifyOptions,
  type JailkeeperRequest,
  type JailkeeperRouteConfig,
  jailkeeperPlugin,
  jailkeeperPlugin as default,
} from './plugin.js';
