// `@jailkeeper/core/operator`: what the operators' tools built on the engine (@jailkeeper/ops, the
// jailkeeper command) share with it, so that they judge an address, a network, a duration or a
// configuration exactly as the engine does: IP and CIDR parsing, the ignore list, option
// resolution and its warnings, the engine's defaults, the event and status shapes, and the
// signatures the presets are built from. An app needs none of it: its API is `@jailkeeper/core`.
export { createManualClock, type ManualClock, systemClock } from '../clock.js';
export { DEFAULTS, isJailName } from '../config/defaults.js';
export {
  type BanDuration,
  type DurationString,
  type DurationUnit,
  formatDuration,
  toBanTimeMs,
} from '../config/duration.js';
export type { Banned, NotBanned, Verdict } from '../engine/ban-index.js';
export type {
  BrokenLink,
  JailOutcome,
  JailStatus,
  ObserveResult,
  RequestInfo,
  ResponseEvent,
} from '../engine/events.js';
export { IgnoreList, parseIgnoreEntry } from '../engine/ignore-list.js';
export { jailNames } from '../engine/operations.js';
export type { ResolvedJail, ResolvedOptions } from '../engine/options.js';
export type { JailPreset } from '../engine/presets.js';
export { type ConfigWarning, configWarnings, resolveOptions } from '../engine/resolve-options.js';
export {
  type CrawlerDefinition,
  type CrawlerResolver,
  KNOWN_CRAWLERS,
} from '../engine/verified-crawlers.js';
export { docsFor, ERROR_CODES, WARNING_CODES } from '../errors.js';
export { accountKey } from '../identity/account.js';
export type { ClientIpHeader, Headers, ProxyTrust } from '../identity/client-ip.js';
export { type ClientIdentity, requireClient } from '../identity/identity.js';
export {
  type Cidr,
  canonicalIp,
  formatCidr,
  formatIp,
  type ParsedIp,
  parseCidr,
  parseIp,
} from '../identity/ip.js';
export { canonicalNetworks, IpSet, NAMED_RANGES } from '../identity/ip-set.js';
export type { PathPattern } from '../paths/path-pattern.js';
export { type UncoveredPattern, uncoveredMessage, uncoveredPatterns } from '../paths/route-coverage.js';
export { BAD_BOT_AGENTS, BAD_BOT_SOURCE } from '../signatures/bad-bots.js';
export { PROBE_PATH_GROUPS, PROBE_PATHS, type ProbeSignatureGroup } from '../signatures/probe-paths.js';
