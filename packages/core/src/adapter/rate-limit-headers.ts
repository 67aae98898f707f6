import type { Banned } from '../engine/ban-index.js';
import type { ResolvedJail } from '../engine/options.js';
import { retryAfterSeconds } from './refusal.js';

// The RateLimit-Policy and RateLimit header fields of draft-ietf-httpapi-ratelimit-headers-10
// (the structured-field form since draft 08): a List of Items, the policy's name as an sf-string
// and its parameters. A jail is a policy named after the jail; names are letters, digits, '.',
// '_' and '-', so they need no escaping inside the quotes.

/** `"login";q=5;w=600`: the jail's quota (failures) and window (seconds). */
export function policyItem(jail: ResolvedJail): string {
  return `"${jail.name}";q=${jail.maxRetry};w=${Math.max(1, Math.ceil(jail.findTimeMs / 1000))}`;
}

/**
 * `"login";r=3;t=600`: the attempts this client has left in the jail's window, this one counted
 * as a failure, never above the quota (a pardoned client's higher threshold is not advertised);
 * `t` is the window, the longest the oldest failure can take to leave it (the store keeps no
 * cheaper figure: an exact reset would cost a round trip on the clean path).
 */
export function remainingItem(jail: ResolvedJail, left: number): string {
  const r = Math.max(0, Math.min(jail.maxRetry, left));
  return `"${jail.name}";r=${r};t=${Math.max(1, Math.ceil(jail.findTimeMs / 1000))}`;
}

/** `"login";r=0;t=42`: a refusal by the jail, with the ban's remaining time (none for a permanent ban). */
export function bannedItem(jail: ResolvedJail, verdict: Banned, nowMs: number): string {
  if (!Number.isFinite(verdict.untilMs)) return `"${jail.name}";r=0`;
  return `"${jail.name}";r=0;t=${retryAfterSeconds(verdict.untilMs, nowMs, verdict.ban.startMs)}`;
}

/** Adds list members to a header field that may hold some already (two admissions of one request). */
export function appendField(
  res: { getHeader(name: string): unknown; setHeader(name: string, value: string): unknown },
  name: string,
  items: string,
): void {
  const before = res.getHeader(name);
  res.setHeader(name, typeof before === 'string' && before !== '' ? `${before}, ${items}` : items);
}
