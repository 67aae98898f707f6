export { type Backend, type BanRow, HttpBackend, RedisBackend, type StatusReport } from './backend.js';
export { type ConfigProblem, checkConfig, loadConfig } from './config.js';
export { CliError, EXIT } from './errors.js';
export { type ImportResult, importFail2ban, parseIni, translateFailregex } from './fail2ban.js';
export { createCombinedParser, type LogEntry, parseClfTime, parseJsonLine } from './log-line.js';
export { type Io, main, USAGE } from './main.js';
export { type ReplayBan, type ReplayJail, type ReplayOptions, type ReplayReport, replay } from './replay.js';
