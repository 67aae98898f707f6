export {
  type AdminApi,
  type AdminOptions,
  type AdminRequest,
  type AdminResponse,
  banJson,
  createAdminApi,
} from './admin.js';
export type { Banned, NotBanned, Verdict } from './ban-index.js';
export { NOT_BANNED } from './ban-index.js';
export { nextBanTimeMs } from './ban-time.js';
export {
  type ClientIpHeader,
  type ClientIpOptions,
  ClientResolver,
  type Headers,
  type TrustedProxies,
} from './client-ip.js';
export { type Clock, createManualClock, type ManualClock, systemClock } from './clock.js';
export { type Duration, formatDuration, parseDuration, toBanTimeMs } from './duration.js';
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
export { EXPORT_FORMATS, type ExportFormat, exportBans } from './export.js';
export { ConnectionTracker, type GuardOptions } from './guard.js';
export { type ClientIdentity, identify, requireClient } from './identity.js';
export {
  type Cidr,
  canonicalIp,
  clientKey,
  formatCidr,
  formatIp,
  type ParsedIp,
  parseCidr,
  parseIp,
} from './ip.js';
export { canonicalNetworks, IpSet, NAMED_RANGES } from './ip-set.js';
export {
  type BanEvent,
  type BanInfo,
  type BlockedEvent,
  createJailkeeper,
  type FailureEvent,
  type IgnoreList,
  Jailkeeper,
  type JailOutcome,
  type JailStatus,
  type KeeperEvents,
  type KeeperStatus,
  normalizePath,
  type ObserveResult,
  type PardonEvent,
  type RequestInfo,
  type ResponseEvent,
  type UnbanEvent,
} from './keeper.js';
export { createMemoryStore, type MemoryStoreOptions } from './memory-store.js';
export {
  createMetrics,
  type JailkeeperMetrics,
  type MetricsOptions,
  type PromClientLike,
} from './metrics.js';
export {
  createWebhookNotifier,
  escapeForChat,
  type NotifiedEvent,
  type WebhookNotifier,
  type WebhookNotifierOptions,
  webhookPayload,
} from './notifier.js';
export type {
  BanTimeIncrementOptions,
  JailkeeperOptions,
  JailOptions,
  PardonOptions,
  RecidiveOptions,
  ResolvedJail,
  ResolvedOptions,
} from './options.js';
export { checkKeys, RESERVED_JAILS, resolveOptions } from './options.js';
export type { PathPattern } from './path-pattern.js';
export {
  pathOf,
  type RefusalOptions,
  type ResolvedRefusal,
  resolveRefusal,
  retryAfterSeconds,
} from './refusal.js';
export type {
  Ban,
  FailureResult,
  FailureRule,
  IncrementInput,
  ManualBanInput,
  RecidiveInput,
  Store,
  StoreContext,
  StoreJailStatus,
} from './store.js';
export {
  type CrawlerDefinition,
  type CrawlerResolver,
  KNOWN_CRAWLERS,
  type VerifiedCrawlersOptions,
} from './verified-crawlers.js';
