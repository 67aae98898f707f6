import { type Ban, JailkeeperError, parseCidr } from '@jailkeeper/core';

/** The formats an edge proxy or firewall loads. */
export const EXPORT_FORMATS = ['plain', 'json', 'nginx-geo', 'nginx-map', 'haproxy-acl', 'ipset'] as const;
/** A format of `exportBans()`: one of {@link EXPORT_FORMATS}. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * Renders active bans for the edge, one network per client key (an IPv4 address, or an IPv6
 * prefix such as `2001:db8:1:2::/64`), sorted and deduplicated across jails:
 * - `plain`: one network a line;
 * - `json`: `[{ client, jail, endMs }]` (the latest end per client; `null` for permanent);
 * - `nginx-geo`: a `geo $jailkeeper_banned { default 0; <net> 1; }` block, for `if ($jailkeeper_banned) { return 444; }`;
 * - `nginx-map`: `<net> 1;` lines for an included file (a `geo` block body: nginx `map` cannot match CIDRs);
 * - `haproxy-acl`: one network a line, for `acl banned src -f <file>`;
 * - `ipset`: `ipset restore` input with a `hash:net` set per family (`<name>` and `<name>6`).
 * Client keys are re-validated: anything that is not a network is left out, never written.
 */
export function exportBans(
  bans: readonly Ban[],
  format: ExportFormat,
  options: { name?: string } = {},
): string {
  const name = checkExport(format, options);
  const latest = new Map<string, Ban>();
  for (const ban of bans) {
    const cidr = parseCidr(ban.client);
    if (typeof cidr === 'string') continue; // never write what is not a network
    const held = latest.get(ban.client);
    if (held === undefined || ban.endMs > held.endMs) latest.set(ban.client, ban);
  }
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
            jail: ban.jail,
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

/** Validates the format and the name; returns the name. */
function checkExport(format: ExportFormat, options: { name?: string }): string {
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
  return name;
}

const json = (ban: Ban) =>
  JSON.stringify({
    client: ban.client,
    jail: ban.jail,
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

function line(format: ExportFormat, name: string, ban: Ban, first: boolean): string {
  const c = ban.client;
  switch (format) {
    case 'plain':
    case 'haproxy-acl':
      return `${c}\n`;
    case 'json':
      return `${first ? '\n  ' : ',\n  '}${json(ban)}`;
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
 * bans in several jails are one line, since a page never splits a client's bans.
 */
export async function exportBanPages(
  pages: AsyncIterable<readonly Ban[]>,
  format: ExportFormat,
  options: { name?: string } = {},
): Promise<string> {
  const name = checkExport(format, options);
  const parts: string[] = [header(format, name)];
  let first = true;
  for await (const page of pages) {
    const latest = new Map<string, Ban>();
    for (const ban of page) {
      if (typeof parseCidr(ban.client) === 'string') continue; // never write what is not a network
      const held = latest.get(ban.client);
      if (held === undefined || ban.endMs > held.endMs) latest.set(ban.client, ban);
    }
    const lines: string[] = [];
    for (const ban of latest.values()) {
      lines.push(line(format, name, ban, first));
      first = false;
    }
    parts.push(lines.join(''));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  parts.push(footer(format, first));
  return parts.join('');
}
