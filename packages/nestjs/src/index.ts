export type { RefusalInfo } from '@jailkeeper/core/adapter';
export { JAILKEEPER_ROUTE, JailkeeperExempt, JailkeeperJails, JailkeeperRoute } from './decorators.js';
export { JailkeeperModule } from './module.js';
export {
  JAILKEEPER_OPTIONS,
  type JailkeeperModuleAsyncOptions,
  type JailkeeperModuleOptions,
} from './options.js';
export { JailkeeperService } from './service.js';
