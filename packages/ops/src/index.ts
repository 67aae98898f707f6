export {
  type AdminApi,
  type AdminOptions,
  type AdminRequest,
  type AdminResponse,
  type BanJson,
  banJson,
  createAdminApi,
} from './admin.js';
export { EXPORT_FORMATS, type ExportFormat, exportBanPages, exportBans } from './export.js';
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
