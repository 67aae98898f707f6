import type { Clock } from '../clock.js';
import { formatDuration } from '../config/duration.js';
import { clientKey, parseCidr, parseIp } from '../identity/ip.js';
import type { Ban, FailureRule, Store } from '../store/store.js';
import type { BanBook } from './ban-book.js';
import type { Announcer } from './events.js';
import type { ResolvedOptions } from './options.js';
import { ruleOf } from './rules.js';

/**
 * Range bans for IPv6 rotation (`ipv6RangeBan`). An attacker who owns a /48 has 65,536 /64s, each
 * a fresh client: banning them one by one gives it `maxRetry` attempts per /64. Here each ban of a
 * /64 made by this instance counts as one failure of its /48, through the store like any failure
 * (so it is counted once fleet-wide, atomically, and banned exactly once at the threshold); at
 * `threshold` within the jail's findTime, the /48 is banned in that jail as one entry, with the
 * jail's banTime and escalation. `check()` then looks up an IPv6 client's network too, but only
 * while such a ban is active.
 */
export function watchRanges(
  options: ResolvedOptions,
  book: BanBook,
  store: Store,
  announcer: Announcer,
  clock: Clock,
): void {
  const range = options.ipv6RangeBan;
  if (range === null) return;
  const suffix = `/${options.ipv6Subnet}`;
  const rules = new Map<string, FailureRule>();
  for (const jail of options.jails) {
    rules.set(
      jail.name,
      ruleOf(jail, options, {
        maxRetry: range.threshold,
        pardonMaxRetry: range.threshold,
        recidive: null,
        reason: `${range.threshold} clients of this /${range.prefix} banned within ${formatDuration(jail.findTimeMs)}`,
      }),
    );
  }
  book.rangeSuffix = `/${range.prefix}`;
  book.onLocalBan = (ban: Ban) => {
    const rule = rules.get(ban.jail);
    if (rule === undefined || !ban.client.endsWith(suffix) || ban.endMs <= clock.now()) return;
    const cidr = parseCidr(ban.client);
    if (typeof cidr === 'string' || cidr.family !== 6) return;
    const network = clientKey({ family: 6, words: cidr.words }, range.prefix);
    store.recordFailure(rule, network, 0).then(
      (result) => {
        if (result.ban && !result.alreadyBanned) book.apply(result.ban, 'local');
      },
      (error) => announcer.storeError('rangeBan', error),
    );
  };
}

/** The network key of an IPv6 address for range bans (`2001:db8:1::/48`), or undefined. */
export function rangeKeyOf(address: string, prefix: number): string | undefined {
  const ip = parseIp(address);
  return ip === undefined || ip.family !== 6 ? undefined : clientKey(ip, prefix);
}
