// `@jailkeeper/core/store`: the contract a store implements (the memory store here, the Redis store
// in @jailkeeper/redis, one of your own for another database), and the types of its calls. Run
// `storeConformance` of `@jailkeeper/core/testing` against a store of your own.
export type { Clock } from '../clock.js';
export type { MemoryStore } from './memory-store.js';
export type {
  Ban,
  BanPage,
  BanPageQuery,
  FailureResult,
  FailureRule,
  IncrementInput,
  ManualBanInput,
  RecidiveInput,
  Reservation,
  Store,
  StoreContext,
  StoreDownInfo,
  StoreJailStatus,
} from './store.js';
