// The engine's public API: what an app (and a tool built on the engine) uses. Adapters build on
// `@jailkeeper/core/adapter`; store authors test with `@jailkeeper/core/testing`.
export { type Clock, createManualClock, type ManualClock, systemClock } from './clock.js';
export { DEFAULTS, isJailName } from './config/defaults.js';
export {
  type BanDuration,
  type Duration,
  type DurationString,
  type DurationUnit,
  formatDuration,
  parseDuration,
  toBanTimeMs,
} from './config/duration.js';
export type { Admission, Targets } from './engine/admission.js';
export type { Banned, NotBanned, Verdict } from './engine/ban-index.js';
export type { GuardOptions } from './engine/connections.js';
export type {
  BanEvent,
  BanInfo,
  BlockedEvent,
  BrokenLink,
  FailureEvent,
  JailOutcome,
  JailStatus,
  KeeperEvents,
  KeeperStatus,
  ObserveResult,
  PardonEvent,
  RequestInfo,
  ResponseEvent,
  StoreDownEvent,
  StoreRecoveredEvent,
  UnbanEvent,
} from './engine/events.js';
export { IgnoreList, parseIgnoreEntry } from './engine/ignore-list.js';
export { type CloseOptions, createJailkeeper, Jailkeeper } from './engine/keeper.js';
export { type BanInfoPage, jailNames, type ManualBanOptions } from './engine/operations.js';
export type {
  AttemptOptions,
  BanTimeIncrementOptions,
  Ipv6RangeBanOptions,
  JailkeeperOptions,
  JailOptions,
  PardonOptions,
  ProbeOptions,
  RecidiveOptions,
  ResolvedJail,
  ResolvedOptions,
  SharedPathsOptions,
} from './engine/options.js';
export { type JailPreset, presets } from './engine/presets.js';
export { type ConfigWarning, configWarnings, resolveOptions } from './engine/resolve-options.js';
export type { Slots } from './engine/slots.js';
export {
  type CrawlerDefinition,
  type CrawlerResolver,
  KNOWN_CRAWLERS,
  type VerifiedCrawlersOptions,
} from './engine/verified-crawlers.js';
export {
  docsFor,
  ERROR_CODES,
  type ErrorCode,
  JailkeeperConfigError,
  JailkeeperError,
  type Logger,
  WARNING_CODES,
  type WarningCode,
} from './errors.js';
export { accountKey } from './identity/account.js';
export type {
  ClientIpHeader,
  ClientIpOptions,
  Headers,
  ProxyTrust,
  TrustedProxies,
} from './identity/client-ip.js';
export { type ClientIdentity, requireClient } from './identity/identity.js';
export {
  type Cidr,
  canonicalIp,
  formatCidr,
  formatIp,
  type ParsedIp,
  parseCidr,
  parseIp,
} from './identity/ip.js';
export { canonicalNetworks, IpSet, NAMED_RANGES } from './identity/ip-set.js';
export type { PathPattern } from './paths/path-pattern.js';
export { BAD_BOT_AGENTS, BAD_BOT_SOURCE } from './signatures/bad-bots.js';
export { PROBE_PATH_GROUPS, PROBE_PATHS, type ProbeSignatureGroup } from './signatures/probe-paths.js';
export { createMemoryStore, type MemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
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
} from './store/store.js';
