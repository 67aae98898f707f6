export type { Backend, BanRow, StatusReport } from './backend.js';
export type { Io } from './commands/shared.js';
export { type ConfigProblem, checkConfig, loadConfig } from './config.js';
export { CliError, EXIT } from './errors.js';
export { type Fail2banFile, type ImportResult, importFail2ban, parseIni } from './fail2ban.js';
export { type Fail2banConfigFiles, readFail2banConfig, readFilters } from './fail2ban-files.js';
export { type LoadedFilter, loadFilter, parseFilterSpec } from './fail2ban-filter.js';
export { SCANNER_PATHS, STOCK_FILTERS, type StockFilter } from './fail2ban-stock.js';
export { type LineTranslation, type TranslatedRule, translateRegex } from './fail2ban-translate.js';
export { HttpBackend } from './http-backend.js';
export {
  type CombinedEntry,
  clfTimeHasZone,
  createCombinedParser,
  type LogEntry,
  parseClfTime,
  parseJsonLine,
} from './log-line.js';
export { main, USAGE } from './main.js';
export { RedisBackend } from './redis-backend.js';
export { type ReplayBan, type ReplayJail, type ReplayOptions, type ReplayReport, replay } from './replay.js';
