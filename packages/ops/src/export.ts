import { JailkeeperError } from '@jailkeeper/core';
import { formatCidr, parseCidr } from '@jailkeeper/core/operator';
import type { Ban } from '@jailkeeper/core/store';

/** The formats an edge proxy or firewall loads. */
export const EXPORT_FORMATS = ['plain', 'json', 'nginx-geo', 'nginx-map', 'haproxy-acl', 'ipset'] as const;
/** A format of `exportBans()`: one of {@link EXPORT_FORMATS}. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Options of {@link exportBans}. */
export interface ExportOptions {
  /** The set or variable name (`ipset`, `nginx-geo`). @default 'jailkeeper' */
  name?: string;
  /**
   * The widest IPv6 network written, as a prefix length (32 to 128). A client key is an IPv6
   * prefix of the keeper's `ipv6Subnet`; anything wider is refused. @default 48
   */
  minIpv6Prefix?: number;
  /** Called for each entry left out, with the reason (for a warning or a count). */
  onInvalid?: (client: unknown, reason: string) => void;
}

/** What a stored client key may be made of: no space, no control character, nothing else. */
const NETWORK_TEXT = /^[0-9A-Fa-f:.]{2,45}(\/\d{1,3})?$/;

/**
 * The canonical network of a client key read from a store, or the reason it is refused. A key is
 * an IPv4 address or an IPv6 prefix no wider than `minIpv6Prefix`; IPv4-mapped forms become IPv4,
 * IPv6 is written in RFC 5952 form. Never `0.0.0.0/0`, `::/0`, an IPv4 range, an unspecified
 * address, or text with spaces or control characters: a forged store entry must not become a line
 * of an nginx or ipset file.
 */
export function exportableNetwork(client: unknown, minIpv6Prefix = 48): string | { invalid: string } {
  if (typeof client !== 'string') return { invalid: 'not a string' };
  // Most keys: a canonical IPv4 address is its own network (no parse, no new string).
  if (isCanonicalV4(client)) return client;
  if (!NETWORK_TEXT.test(client)) return { invalid: 'not a network in canonical characters' };
  const cidr = parseCidr(client);
  if (typeof cidr === 'string') return { invalid: cidr };
  if (cidr.family === 4) {
    if (cidr.prefix !== 32) return { invalid: 'an IPv4 range, not one client' };
    if (cidr.value === 0) return { invalid: 'the unspecified address' };
  } else {
    if (cidr.prefix < minIpv6Prefix) return { invalid: `an IPv6 range wider than /${minIpv6Prefix}` };
    if (cidr.words.every((w) => w === 0)) return { invalid: 'the unspecified address' };
  }
  return formatCidr(cidr);
}

/** A dotted quad in canonical form (four parts 0-255, no leading zero), other than 0.0.0.0. */
function isCanonicalV4(text: string): boolean {
  if (text.length < 7 || text.length > 15) return false;
  let dots = 0;
  let part = 0;
  let digits = 0;
  let nonzero = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return false;
      dots++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false; // a leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return false;
      if (part > 0) nonzero = true;
      digits++;
    } else return false;
  }
  return dots === 3 && digits > 0 && nonzero;
}

/**
 * The bans by the network they are written as (the canonical client), the latest-ending one of
 * each, with `client` set to that network. What is not one client's network is reported to
 * `onInvalid` and left out: never written.
 */
function latestByNetwork(
  bans: Iterable<Ban>,
  minIpv6Prefix: number,
  onInvalid: ExportOptions['onInvalid'],
): Map<string, Ban> {
  const latest = new Map<string, Ban>();
  for (const ban of bans) {
    const network = exportableNetwork(ban.client, minIpv6Prefix);
    if (typeof network !== 'string') {
      onInvalid?.(ban.client, network.invalid);
      continue;
    }
    const held = latest.get(network);
    if (held === undefined || ban.endMs > held.endMs) latest.set(network, { ...ban, client: network });
  }
  return latest;
}

/**
 * Renders active bans for the edge, one network per client key (an IPv4 address, or an IPv6
 * prefix such as `2001:db8:1:2::/64`), sorted and deduplicated across jails:
 * - `plain`: one network a line;
 * - `json`: `[{ client, jail, endMs }]` (the latest end per client; `null` for permanent);
 * - `nginx-geo`: a `geo $jailkeeper_banned { default 0; <net> 1; }` block, for `if ($jailkeeper_banned) { return 444; }`;
 * - `nginx-map`: `<net> 1;` lines for an included file (a `geo` block body: nginx `map` cannot match CIDRs);
 * - `haproxy-acl`: one network a line, for `acl banned src -f <file>`;
 * - `ipset`: `ipset restore` input with a `hash:net` set per family (`<name>` and `<name>6`).
 * Every client key is validated and canonicalised by {@link exportableNetwork}: what is not one
 * client's network is left out (and reported to `onInvalid`), never written.
 */
export function exportBans(bans: readonly Ban[], format: ExportFormat, options: ExportOptions = {}): string {
  const { minIpv6Prefix } = checkExport(format, options);
  const name = options.name ?? 'jailkeeper';
  const latest = latestByNetwork(bans, minIpv6Prefix, options.onInvalid);
  const clients = [...latest.keys()].sort();
  const v4 = clients.filter((c) => !c.includes(':'));
  const v6 = clients.filter((c) => c.includes(':'));
  switch (format) {
    case 'plain':
    case 'haproxy-acl':
      return clients.map((c) => `${c}\n`).join('');
    case 'json':
      return `${JSON.stringify(
        clients.map((c) => {
          const ban = latest.get(c) as Ban;
          return {
            client: c,
            jail: String(ban.jail),
            endMs: ban.endMs === Number.POSITIVE_INFINITY ? null : ban.endMs,
          };
        }),
        null,
        2,
      )}\n`;
    case 'nginx-map':
      return clients.map((c) => `${c} 1;\n`).join('');
    case 'nginx-geo':
      return `geo $${name.replace(/-/g, '_')}_banned {\n  default 0;\n${clients.map((c) => `  ${c} 1;\n`).join('')}}\n`;
    case 'ipset':
      return [
        `create ${name} hash:net family inet -exist`,
        `create ${name}6 hash:net family inet6 -exist`,
        `flush ${name}`,
        `flush ${name}6`,
        ...v4.map((c) => `add ${name} ${c}`),
        ...v6.map((c) => `add ${name}6 ${c}`),
        '',
      ].join('\n');
  }
}

/** Validates the format, the name and the widest IPv6 prefix. */
function checkExport(format: ExportFormat, options: ExportOptions): { name: string; minIpv6Prefix: number } {
  if (!EXPORT_FORMATS.includes(format)) {
    throw new JailkeeperError(
      'JK_ERR_INVALID_OPTION',
      `export format must be one of ${EXPORT_FORMATS.join(', ')}; received ${JSON.stringify(format)}.`,
    );
  }
  const name = options.name ?? 'jailkeeper';
  if (!/^[A-Za-z_][A-Za-z0-9_-]{0,30}$/.test(name)) {
    throw new JailkeeperError(
      'JK_ERR_INVALID_OPTION',
      `export name must be a short identifier; received ${JSON.stringify(name)}.`,
    );
  }
  const minIpv6Prefix = options.minIpv6Prefix ?? 48;
  if (!Number.isInteger(minIpv6Prefix) || minIpv6Prefix < 32 || minIpv6Prefix > 128) {
    throw new JailkeeperError(
      'JK_ERR_INVALID_OPTION',
      `export minIpv6Prefix must be an integer from 32 to 128; received ${JSON.stringify(minIpv6Prefix)}.`,
    );
  }
  return { name, minIpv6Prefix };
}

const json = (client: string, ban: Ban) =>
  JSON.stringify({
    client,
    jail: String(ban.jail),
    endMs: ban.endMs === Number.POSITIVE_INFINITY ? null : ban.endMs,
  });

function header(format: ExportFormat, name: string): string {
  if (format === 'json') return '[';
  if (format === 'nginx-geo') return `geo $${name.replace(/-/g, '_')}_banned {\n  default 0;\n`;
  if (format === 'ipset') {
    return `create ${name} hash:net family inet -exist\ncreate ${name}6 hash:net family inet6 -exist\nflush ${name}\nflush ${name}6\n`;
  }
  return '';
}

function line(format: ExportFormat, name: string, c: string, ban: Ban, first: boolean): string {
  switch (format) {
    case 'plain':
    case 'haproxy-acl':
      return `${c}\n`;
    case 'json':
      return `${first ? '\n  ' : ',\n  '}${json(c, ban)}`;
    case 'nginx-map':
      return `${c} 1;\n`;
    case 'nginx-geo':
      return `  ${c} 1;\n`;
    case 'ipset':
      return `add ${c.includes(':') ? `${name}6` : name} ${c}\n`;
  }
}

function footer(format: ExportFormat, empty = false): string {
  if (format === 'json') return empty ? ']\n' : '\n]\n';
  if (format === 'nginx-geo') return '}\n';
  return '';
}

/**
 * The same formats, built from pages of bans (`keeper.bansPage()`, a store's `bansPage`) a page at
 * a time, with a turn of the event loop between pages: a million bans never block it for long.
 * Lines come in the store's order (stable from one export to the next, not sorted); a client's
 * bans in several jails are one line (the first met: a page may split a client's bans, so the
 * networks written are remembered for the whole export).
 */
export async function exportBanPages(
  pages: AsyncIterable<readonly Ban[]>,
  format: ExportFormat,
  options: ExportOptions = {},
): Promise<string> {
  return (await exportBanChunks(pages, format, options)).join('');
}

/** How many Sets hold what an export has written, and the share of keys each takes (64 + its index). */
const SHARDS = 64;
const SHARD_OF = (() => {
  const table: number[] = [];
  for (let shard = 0; shard < SHARDS; shard++) for (let k = 0; k < SHARDS + shard; k++) table.push(shard);
  return Uint8Array.from(table);
})();

/**
 * Many strings, spread over small Sets by a hash of their text: a Set that doubles rehashes all it
 * holds in one go (about 60 ms at a million entries on a quiet machine, more under load), a shard
 * a 64th of that. The shards take unequal shares (from 64 to 127 parts of 6,112), so they fill at
 * different rates and double at different moments: with equal shares all 64 doubled within the
 * same three pages of an export (25-31 ms of CPU each at 524,288 networks, load 7.5-7.9).
 * What an export has written: up to one entry per banned network.
 */
class WrittenSet {
  readonly #shards = Array.from({ length: SHARDS }, () => new Set<string>());

  /** Adds `key`; false when it was there already. */
  add(key: string): boolean {
    let hash = 2166136261;
    for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 16777619);
    const shard = this.#shards[SHARD_OF[(hash >>> 0) % SHARD_OF.length] as number] as Set<string>;
    if (shard.has(key)) return false;
    shard.add(key);
    return true;
  }
}

/**
 * {@link exportBanPages}'s text as the chunks it is built of, one a page, for an answer written
 * chunk by chunk (the admin API's `GET /export`): a million lines are never joined into one
 * string, nor encoded at once. A turn of the event loop separates pages.
 */
export async function exportBanChunks(
  pages: AsyncIterable<readonly Ban[]>,
  format: ExportFormat,
  options: ExportOptions = {},
): Promise<string[]> {
  const { name, minIpv6Prefix } = checkExport(format, options);
  const parts: string[] = [header(format, name)];
  const written = new WrittenSet();
  let first = true;
  for await (const page of pages) {
    // Joined per page: a flat string, its pieces garbage at once (not a rope kept to the end).
    const lines: string[] = [];
    if (format === 'json') {
      // The latest end of a client's bans on the page (its jail and end are written).
      for (const [network, ban] of latestByNetwork(page, minIpv6Prefix, options.onInvalid)) {
        if (!written.add(network)) continue;
        lines.push(line(format, name, network, ban, first));
        first = false;
      }
    } else {
      // Only the network is written: no object per ban. A canonical key is its own network, and
      // the set keeps the store's string rather than a copy.
      for (const ban of page) {
        const network = exportableNetwork(ban.client, minIpv6Prefix);
        if (typeof network !== 'string') {
          options.onInvalid?.(ban.client, network.invalid);
          continue;
        }
        if (!written.add(network === ban.client ? ban.client : network)) continue;
        lines.push(line(format, name, network, ban, first));
        first = false;
      }
    }
    if (lines.length > 0) parts.push(lines.join(''));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  parts.push(footer(format, first));
  return parts;
}
