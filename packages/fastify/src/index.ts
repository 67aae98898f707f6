export { type JailkeeperAdminOptions, jailkeeperAdmin } from './admin.js';
export { jailkeeperPlugin, jailkeeperPlugin as default } from './plugin.js';
export type { JailkeeperFastifyOptions, JailkeeperRequest, JailkeeperRouteConfig } from './types.js';
