export type { RefusalInfo } from '@jailkeeper/core/adapter';
export { jailkeeperPlugin, jailkeeperPlugin as default } from './plugin.js';
export type { JailkeeperFastifyOptions, JailkeeperRequest, JailkeeperRouteConfig } from './types.js';
