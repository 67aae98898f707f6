// The engine's public API for apps: make a keeper, configure its jails, listen to what it does,
// and ban or unban by hand. Adapters build on `@jailkeeper/core/adapter`; store authors implement
// the contract of `@jailkeeper/core/store`; the operators' tools (ops, the CLI) use the helpers of
// `@jailkeeper/core/operator`; tests use `@jailkeeper/core/testing`.
export { type Duration, parseDuration } from './config/duration.js';
export type {
  BanEvent,
  BanInfo,
  BlockedEvent,
  FailureEvent,
  KeeperEvents,
  KeeperStatus,
  PardonEvent,
  StoreDownEvent,
  StoreRecoveredEvent,
  UnbanEvent,
} from './engine/events.js';
export { type CloseOptions, createJailkeeper, Jailkeeper } from './engine/keeper.js';
export type { BanInfoPage, ManualBanOptions } from './engine/operations.js';
export type {
  AttemptOptions,
  BanTimeIncrementOptions,
  Ipv6RangeBanOptions,
  JailkeeperOptions,
  JailOptions,
  KeyFacts,
  KeyFunction,
  PardonOptions,
  ProbeOptions,
  RecidiveOptions,
  SharedPathsOptions,
} from './engine/options.js';
export { presets } from './engine/presets.js';
export type { VerifiedCrawlersOptions } from './engine/verified-crawlers.js';
export {
  type ErrorCode,
  JailkeeperConfigError,
  JailkeeperError,
  type Logger,
  type WarningCode,
} from './errors.js';
export type { ClientIpOptions, TrustedProxies } from './identity/client-ip.js';
export { createMemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
export type { Store } from './store/store.js';
