import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type BanInfo, type Jailkeeper, JailkeeperError } from '@jailkeeper/core';
import { checkKeys } from '@jailkeeper/core/adapter';
import type { BanDuration } from '@jailkeeper/core/operator';
import type { Ban } from '@jailkeeper/core/store';
import { AdminGate, callerKey } from './admin-gate.js';
import {
  type AdminRequest,
  type AdminResponse,
  errorResponse,
  failure,
  json,
  nodeHandler,
} from './admin-http.js';
import { banJson } from './ban-json.js';
import { isPageQuery, localBanPager, parseBanQuery } from './ban-pager.js';
import { type AuditEntry, AuditLog, cleanText } from './console/audit-log.js';
import { type ConsoleHandler, type ConsoleOptions, createConsoleHandler } from './console/console.js';
import { keeperBackend } from './console/keeper-backend.js';
import { type ExportFormat, exportBanChunks } from './export.js';
import type { JailkeeperMetrics } from './metrics.js';
import type { LockoutOptions } from './token-lockout.js';

export type { AdminRequest, AdminResponse } from './admin-http.js';
export { type BanJson, banJson } from './ban-json.js';

/** Options of {@link createAdminApi}. */
export interface AdminOptions {
  /** The bearer token callers send (`Authorization: Bearer <token>`); at least 16 characters. */
  token: string;
  /**
   * Callers other than loopback: `true` for any, or a list of addresses and CIDRs. A request that
   * arrived through a proxy (it carries a forwarding header) is not loopback.
   * @default false (loopback only)
   */
  allowRemote?: boolean | string[];
  /** Serves these metrics at `GET /metrics`. */
  metrics?: JailkeeperMetrics;
  /**
   * The admin API's own lockout of callers that send wrong tokens (counted here, whatever jails the
   * app has, and also for callers in `ignoreIp`).
   * @default { maxRetry: 5, findTime: '10m', banTime: '15m' }
   */
  lockout?: LockoutOptions;
  /**
   * Serves the operators' console at `<mount>/console/`: `true`, or its options.
   * @default false
   */
  console?: boolean | ConsoleOptions;
}

/** The admin API of one keeper; mount it with the Express or Fastify adapter, or `node()`. */
export interface AdminApi {
  handle(request: AdminRequest): Promise<AdminResponse>;
  /** A Node `(req, res)` handler (and Express middleware), reading the body itself. */
  node(req: IncomingMessage, res: ServerResponse): void;
  /** Stops the console's timers and listeners, and ends its live feeds. */
  close(): void;
}

const KEYS = { token: true, allowRemote: true, metrics: true, lockout: true, console: true } as const;
const ROUTES = ['/status', '/bans', '/bans/stream', '/ignore', '/export', '/metrics', '/console/'];
/** Bans per page of `GET /bans` when the caller does not say (`?limit=`, at most 5,000). */
const DEFAULT_PAGE = 1000;
/** Bans read per page of a stream or an export. */
const STREAM_PAGE = 1000;
/**
 * An export up to this many characters (256 KB) is answered as one string; a larger one as a stream of its
 * chunks (one a page). Joining 17 MB of nginx-geo lines into one string held the event loop
 * 60 ms on a quiet machine (the copy into a fresh block of memory), 115 ms at a load of 7.
 */
const EXPORT_AS_TEXT = 256 * 1024;

/** Every active ban, a page at a time. */
async function* pagesOf(keeper: Jailkeeper, jail: string | undefined): AsyncGenerator<BanInfo[]> {
  let after: string | undefined;
  do {
    const page = await keeper.bansPage({ jail, after, limit: STREAM_PAGE });
    yield page.bans;
    after = page.next;
  } while (after !== undefined);
}

/**
 * `GET /bans/stream`: every active ban as NDJSON, one JSON object a line, a page at a time. The
 * stream pulls the next page only when the client has taken the last one (backpressure), and a
 * turn of the event loop separates pages: a million bans never hold the app for long, and a
 * slow reader costs nothing but its socket.
 */
function banStream(keeper: Jailkeeper, jail: string | undefined): Readable {
  async function* lines(): AsyncGenerator<string> {
    for await (const page of pagesOf(keeper, jail)) {
      if (page.length > 0) yield `${page.map((ban) => JSON.stringify(banJson(ban))).join('\n')}\n`;
      await nextTurn();
    }
  }
  return Readable.from(lines(), { objectMode: false });
}

function field(body: unknown, name: string, required: boolean): string | undefined {
  const value =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new JailkeeperError('JK_ERR_BAD_REQUEST', `The JSON body needs "${name}" as a non-empty string.`);
  }
  return value;
}

/**
 * The admin API: status, bans (whole or paged and searched), ban and unban, the runtime ignore
 * list, exports, metrics and (with `console`) the operators' console, under one mount point. Off
 * unless mounted; every call needs the bearer token (compared in constant time) and, unless
 * `allowRemote`, a loopback caller that did not come through a proxy. Wrong tokens are counted per
 * caller and lock it out (`lockout`); changes are kept in an audit log with who made them.
 * @example
 * app.use('/_jailkeeper', jailkeeperAdmin(keeper, { token: process.env.JAILKEEPER_TOKEN ?? '', console: true }));
 */
export function createAdminApi(keeper: Jailkeeper, options: AdminOptions): AdminApi {
  const input = checkKeys('admin options', options, KEYS);
  const now = () => keeper.clock.now();
  const audit = new AuditLog(keeper.options.logger);
  const gate = new AdminGate({
    token: input.token,
    allowRemote: input.allowRemote,
    lockout: input.lockout as LockoutOptions | undefined,
    path: 'admin',
    now,
    audit,
  });
  const metrics = input.metrics as JailkeeperMetrics | undefined;
  const consoleOption = input.console as boolean | ConsoleOptions | undefined;
  if (
    consoleOption !== undefined &&
    typeof consoleOption !== 'boolean' &&
    typeof consoleOption !== 'object'
  ) {
    throw new JailkeeperError('JK_ERR_INVALID_OPTION', 'admin.console must be true, false or an object.');
  }
  const backend = consoleOption ? keeperBackend(keeper) : undefined;
  const consoleHandler: ConsoleHandler | undefined =
    backend === undefined
      ? undefined
      : createConsoleHandler(backend, {
          gate,
          audit,
          options: consoleOption === true ? true : (consoleOption as ConsoleOptions),
          path: 'admin.console',
        });
  // Without a console, paged queries have a pager of their own over the same local index.
  const pager = backend?.pager ?? localBanPager(keeper, { now });
  if (backend === undefined) {
    const invalidate = () => pager.invalidate();
    keeper.on('ban', invalidate);
    keeper.on('unban', invalidate);
  }
  const minIpv6Prefix = Math.min(48, Math.max(32, keeper.options.ipv6Subnet));

  const act = async <T>(
    request: AdminRequest,
    action: AuditEntry['action'],
    target: string,
    run: () => Promise<T>,
    detail: (result: T) => string,
  ): Promise<T> => {
    const entry = {
      atMs: now(),
      who: cleanText(request.headers['x-jailkeeper-actor'], 40) || 'token',
      via: 'api' as const,
      from: callerKey(request.peer),
      action,
      target: cleanText(target, 120),
    };
    try {
      const result = await run();
      audit.record({ ...entry, ok: true, detail: cleanText(detail(result), 300) });
      return result;
    } catch (error) {
      audit.record({ ...entry, ok: false, detail: cleanText((error as Error).message, 300) });
      throw error;
    }
  };

  const route = async (request: AdminRequest): Promise<AdminResponse> => {
    const { method, query } = request;
    const path = request.path.replace(/\/+$/, '') || '/';
    const jail = query.get('jail') ?? undefined;
    switch (`${method} ${path}`) {
      case 'GET /status':
        return json(200, await keeper.status());
      case 'GET /bans': {
        if (query.has('after') || !isPageQuery(without(query, 'limit'))) {
          // Whatever the query, a page of the store's bans and the cursor of the next: a million
          // bans are never built, serialised or sent at once. The whole list is GET /bans/stream.
          const limit = query.get('limit');
          const page = await keeper.bansPage({
            jail,
            after: query.get('after') ?? undefined,
            limit: limit === null ? DEFAULT_PAGE : Number(limit),
          });
          return json(200, {
            bans: page.bans.map(banJson),
            ...(page.next === undefined ? {} : { next: page.next }),
          });
        }
        // The console's pages: searched and sorted over a snapshot, in slices.
        const page = await pager.page(parseBanQuery(query));
        const at = now();
        return json(200, {
          ...page,
          bans: page.bans.map((b) => banJson({ ...b, timeLeftMs: Math.max(0, b.endMs - at) })),
        });
      }
      case 'GET /bans/stream':
        return {
          status: 200,
          headers: {
            'content-type': 'application/x-ndjson; charset=utf-8',
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
          },
          body: banStream(keeper, jail),
        };
      case 'POST /bans': {
        const address = field(request.body, 'address', true) as string;
        const ban = await act(
          request,
          'ban',
          address,
          () =>
            keeper.ban(address, {
              jail: field(request.body, 'jail', false),
              // A string from the request: validated by ban() (JK_ERR_INVALID_DURATION).
              duration: field(request.body, 'duration', false) as BanDuration | undefined,
              reason: field(request.body, 'reason', false),
            }),
          (b) => `${b.jail}, until ${Number.isFinite(b.endMs) ? new Date(b.endMs).toISOString() : 'lifted'}`,
        );
        return json(201, { ban: banJson(ban) });
      }
      case 'DELETE /bans': {
        const address = query.get('address');
        let lifted: Ban[];
        const count = (l: Ban[]) => `${l.length} ban(s) lifted${jail ? ` in ${jail}` : ''}`;
        if (address !== null)
          lifted = await act(request, 'unban', address, () => keeper.unban(address, { jail }), count);
        else if (query.get('all') === 'true')
          lifted = await act(
            request,
            'unban-all',
            jail ?? 'every jail',
            () => keeper.unbanAll({ jail }),
            count,
          );
        else
          throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'DELETE /bans needs ?address=<ip> or ?all=true.');
        return json(200, { lifted: lifted.map(banJson) });
      }
      case 'GET /ignore':
        return json(200, { entries: keeper.ignore.list() });
      case 'POST /ignore': {
        const entry = field(request.body, 'entry', true) as string;
        const added = await act(
          request,
          'ignore-add',
          entry,
          () => keeper.ignore.addShared(entry),
          (a) => a.join(', '),
        );
        return json(200, { added });
      }
      case 'DELETE /ignore': {
        const entry = query.get('entry');
        if (entry === null)
          throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'DELETE /ignore needs ?entry=<cidr>.');
        const removed = await act(
          request,
          'ignore-remove',
          entry,
          () => keeper.ignore.removeShared(entry),
          (r) => r.join(', '),
        );
        return json(200, { removed });
      }
      case 'GET /export': {
        const format = (query.get('format') ?? 'plain') as ExportFormat;
        let skipped = 0;
        const chunks = await exportBanChunks(pagesOf(keeper, jail), format, {
          name: query.get('name') ?? undefined,
          minIpv6Prefix,
          onInvalid: () => skipped++,
        });
        if (skipped > 0) {
          keeper.options.logger?.warn(
            { event: 'exportSkipped', skipped },
            `jailkeeper: export left out ${skipped} store entr${skipped === 1 ? 'y' : 'ies'} that are not one client's network`,
          );
        }
        return {
          status: 200,
          headers: {
            'content-type':
              format === 'json' ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
            ...(skipped > 0 ? { 'x-jailkeeper-skipped': String(skipped) } : {}),
          },
          body: exportBody(chunks),
        };
      }
      case 'GET /metrics':
        if (metrics === undefined)
          return failure(404, 'JK_ERR_BAD_REQUEST', 'Metrics are not enabled on this admin API.');
        return { status: 200, headers: { 'content-type': metrics.contentType }, body: metrics.text() };
      default: {
        if (ROUTES.includes(path))
          return failure(405, 'JK_ERR_BAD_REQUEST', `${method} is not allowed on ${path}.`);
        return failure(
          404,
          'JK_ERR_BAD_REQUEST',
          `No admin route ${path}; the routes are ${ROUTES.join(', ')}.`,
        );
      }
    }
  };

  const handle = async (request: AdminRequest): Promise<AdminResponse> => {
    const refused = gate.admit(request);
    if (refused !== undefined) return refused;
    if (
      consoleHandler !== undefined &&
      (request.path === '/console' || request.path.startsWith('/console/'))
    ) {
      return consoleHandler.handle(request, request.path.slice('/console'.length));
    }
    const wrong = gate.verifyBearer(request);
    if (wrong !== undefined) return wrong;
    try {
      return await route(request);
    } catch (error) {
      return errorResponse(error);
    }
  };

  return {
    handle,
    node: nodeHandler(handle),
    close() {
      consoleHandler?.close();
    },
  };
}

/**
 * An export's chunks as the answer's body: one string when small, else written chunk by chunk
 * with a turn of the event loop between chunks. (A stream over the array itself encoded every
 * chunk in one go for a reader that keeps up, such as a loopback socket: 128 ms of Buffer.from at
 * a million bans.)
 */
function exportBody(chunks: string[]): string | Readable {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  if (length <= EXPORT_AS_TEXT) return chunks.join('');
  async function* pieces(): AsyncGenerator<string> {
    for (let i = 0; i < chunks.length; i++) {
      yield chunks[i] as string;
      chunks[i] = ''; // written: its memory can go
      await nextTurn();
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** The query without one parameter. */
function without(query: URLSearchParams, name: string): URLSearchParams {
  const copy = new URLSearchParams(query);
  copy.delete(name);
  return copy;
}
