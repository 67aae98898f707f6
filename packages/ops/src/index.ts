export {
  type AdminApi,
  type AdminOptions,
  type AdminRequest,
  type AdminResponse,
  type BanJson,
  banJson,
  createAdminApi,
} from './admin.js';
export { callerKey } from './admin-gate.js';
export {
  BAN_SORT_KEYS,
  type BanPager,
  type BanSortKey,
  type BanTablePage,
  type BanTableQuery,
  createBanPager,
} from './ban-pager.js';
export type { AuditEntry } from './console/audit-log.js';
export type { ConsoleBackend, JailOverview, StoreHealth } from './console/backend.js';
export { HealthTracker } from './console/backend.js';
export type { ConsoleOptions } from './console/console.js';
export type { FeedEvent } from './console/feed.js';
export { type ConsoleServer, type ConsoleServerOptions, createConsoleServer } from './console/server.js';
export { TIMELINE_KINDS, type TimelineKind } from './console/timeline.js';
export {
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportOptions,
  exportableNetwork,
  exportBanPages,
  exportBans,
} from './export.js';
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
} from './notifier.js';
export type { LockoutOptions } from './token-lockout.js';
