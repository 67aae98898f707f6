export type { RefusalInfo } from '@jailkeeper/core/adapter';
export {
  type JailkeeperFastifyOptions,
  type JailkeeperRequest,
  type JailkeeperRouteConfig,
  jailkeeperPlugin,
  jailkeeperPlugin as default,
} from './plugin.js';
