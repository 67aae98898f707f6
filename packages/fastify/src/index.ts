export { type JailkeeperAdminOptions, jailkeeperAdmin } from './admin.js';
export {
  type JailkeeperFastifyOptions,
  type JailkeeperRouteConfig,
  jailkeeperPlugin,
  jailkeeperPlugin as default,
} from './plugin.js';
