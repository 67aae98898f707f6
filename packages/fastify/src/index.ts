export {
  type JailkeeperFastifyOptions,
  type JailkeeperRouteConfig,
  jailkeeperPlugin,
  jailkeeperPlugin as default,
} from './plugin.js';
