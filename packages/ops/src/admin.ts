import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  type Ban,
  type BanInfo,
  IpSet,
  type Jailkeeper,
  JailkeeperConfigError,
  JailkeeperError,
  parseIp,
} from '@jailkeeper/core';
import { checkKeys, invalid, networkList } from '@jailkeeper/core/adapter';
import { type ExportFormat, exportBanPages } from './export.js';
import type { JailkeeperMetrics } from './metrics.js';

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
}

/** A request as the framework adapters hand it to the admin API. */
export interface AdminRequest {
  readonly method: string;
  /** The path below the mount point, e.g. `/bans`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The socket's remote address. */
  readonly peer: string | undefined;
  /** The parsed JSON body, when there is one. */
  readonly body: unknown;
}

/** The admin API's answer, for the adapter to write: status, headers and a JSON body. */
export interface AdminResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The admin API of one keeper; mount it with the Express or Fastify adapter, or `node()`. */
export interface AdminApi {
  handle(request: AdminRequest): Promise<AdminResponse>;
  /** A Node `(req, res)` handler (and Express middleware), reading the body itself. */
  node(req: IncomingMessage, res: ServerResponse): void;
}

const KEYS = { token: true, allowRemote: true, metrics: true } as const;
/** Bans per page of `GET /bans` when the caller does not say (`?limit=`, at most 100,000). */
const DEFAULT_PAGE = 1000;

/** Every active ban, a page at a time. */
async function* pagesOf(keeper: Jailkeeper, jail: string | undefined): AsyncGenerator<BanInfo[]> {
  let after: string | undefined;
  do {
    const page = await keeper.bansPage({ jail, after, limit: 2000 });
    yield page.bans;
    after = page.next;
  } while (after !== undefined);
}
const FORWARDING = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-client-ip', 'cf-connecting-ip'];
const MAX_BODY = 64 * 1024;
const LOOPBACK = new IpSet(networkList('loopback', ['loopback']));

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A ban as the admin API and the CLI write it: JSON has no Infinity, so a permanent ban's end is null. */
export interface BanJson {
  readonly jail: string;
  readonly client: string;
  readonly startMs: number;
  /** null for a permanent ban. */
  readonly endMs: number | null;
  /** Milliseconds left (null for a permanent ban); present when the ban came with its time left. */
  readonly timeLeftMs?: number | null;
  readonly banCount: number;
  readonly reason: string;
  readonly manual: boolean;
  readonly permanent: boolean;
  /** `'jail'` for a ban refused only on its jail's routes; present when known. */
  readonly scope?: 'app' | 'jail';
}

/** A ban (or a ban with its time left) as JSON: see {@link BanJson}. */
export function banJson(ban: Ban | BanInfo): BanJson {
  const permanent = ban.endMs === Number.POSITIVE_INFINITY;
  return {
    ...ban,
    endMs: permanent ? null : ban.endMs,
    ...('timeLeftMs' in ban ? { timeLeftMs: permanent ? null : ban.timeLeftMs } : {}),
    permanent,
  };
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): AdminResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(value),
  };
}

function failure(status: number, code: string, message: string, headers?: Record<string, string>) {
  return json(status, { error: { code, message } }, headers);
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
 * The admin API: status, bans, ban and unban, the runtime ignore list, exports and metrics, as
 * JSON under one mount point. Off unless mounted; every call needs the bearer token (compared in
 * constant time) and, unless `allowRemote`, a loopback caller that did not come through a proxy.
 * @example
 * app.use('/_jailkeeper', jailkeeperAdmin(keeper, { token: process.env.JAILKEEPER_TOKEN }));
 */
export function createAdminApi(keeper: Jailkeeper, options: AdminOptions): AdminApi {
  const input = checkKeys('admin options', options, KEYS);
  if (typeof input.token !== 'string' || input.token.length < 16) {
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      'admin.token',
      `admin.token must be a secret of at least 16 characters; received ${typeof input.token === 'string' ? `${input.token.length} characters` : String(input.token)}.`,
    );
  }
  const expected = digest(input.token);
  const allowRemote = input.allowRemote ?? false;
  let remote: IpSet | 'any' | null = null;
  if (allowRemote === true) remote = 'any';
  else if (Array.isArray(allowRemote)) remote = new IpSet(networkList('admin.allowRemote', allowRemote));
  else if (allowRemote !== false) invalid('admin.allowRemote', 'true, false or a list of CIDRs', allowRemote);
  const metrics = input.metrics as JailkeeperMetrics | undefined;

  const callerAllowed = (request: AdminRequest): boolean => {
    if (remote === 'any') return true;
    const ip = request.peer === undefined ? undefined : parseIp(request.peer);
    if (ip === undefined) return false;
    if (remote?.has(ip)) return true;
    if (!LOOPBACK.has(ip)) return false;
    return !FORWARDING.some((h) => request.headers[h] !== undefined);
  };
  const authorized = (request: AdminRequest): boolean => {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
    return timingSafeEqual(digest(header.slice(7).trim()), expected);
  };

  const route = async (request: AdminRequest): Promise<AdminResponse> => {
    const { method, query } = request;
    const path = request.path.replace(/\/+$/, '') || '/';
    const jail = query.get('jail') ?? undefined;
    switch (`${method} ${path}`) {
      case 'GET /status':
        return json(200, await keeper.status());
      case 'GET /bans': {
        // Paged: a million bans are never built, serialised or sent at once.
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
      case 'POST /bans': {
        const ban = await keeper.ban(field(request.body, 'address', true) as string, {
          jail: field(request.body, 'jail', false),
          duration: field(request.body, 'duration', false),
          reason: field(request.body, 'reason', false),
        });
        return json(201, { ban: banJson(ban) });
      }
      case 'DELETE /bans': {
        const address = query.get('address');
        let lifted: Ban[];
        if (address !== null) lifted = await keeper.unban(address, { jail });
        else if (query.get('all') === 'true') lifted = await keeper.unbanAll({ jail });
        else
          throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'DELETE /bans needs ?address=<ip> or ?all=true.');
        return json(200, { lifted: lifted.map(banJson) });
      }
      case 'GET /ignore':
        return json(200, { entries: keeper.ignore.list() });
      case 'POST /ignore':
        return json(200, {
          added: await keeper.ignore.addShared(field(request.body, 'entry', true) as string),
        });
      case 'DELETE /ignore': {
        const entry = query.get('entry');
        if (entry === null)
          throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'DELETE /ignore needs ?entry=<cidr>.');
        return json(200, { removed: await keeper.ignore.removeShared(entry) });
      }
      case 'GET /export': {
        const format = (query.get('format') ?? 'plain') as ExportFormat;
        const text = await exportBanPages(pagesOf(keeper, jail), format, {
          name: query.get('name') ?? undefined,
        });
        return {
          status: 200,
          headers: {
            'content-type':
              format === 'json' ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
            'cache-control': 'no-store',
          },
          body: text,
        };
      }
      case 'GET /metrics':
        if (metrics === undefined)
          return failure(404, 'JK_ERR_BAD_REQUEST', 'Metrics are not enabled on this admin API.');
        return { status: 200, headers: { 'content-type': metrics.contentType }, body: metrics.text() };
      default: {
        const known = ['/status', '/bans', '/ignore', '/export', '/metrics'];
        if (known.includes(path))
          return failure(405, 'JK_ERR_BAD_REQUEST', `${method} is not allowed on ${path}.`);
        return failure(
          404,
          'JK_ERR_BAD_REQUEST',
          `No admin route ${path}; the routes are ${known.join(', ')}.`,
        );
      }
    }
  };

  const handle = async (request: AdminRequest): Promise<AdminResponse> => {
    if (!callerAllowed(request)) {
      return failure(
        403,
        'JK_ERR_ADMIN_FORBIDDEN',
        'The admin API answers loopback callers only (not through a proxy); set allowRemote to open it.',
      );
    }
    if (!authorized(request)) {
      return failure(401, 'JK_ERR_ADMIN_UNAUTHORIZED', 'A valid bearer token is required.', {
        'www-authenticate': 'Bearer realm="jailkeeper"',
      });
    }
    try {
      return await route(request);
    } catch (error) {
      if (error instanceof JailkeeperError) {
        const code = (error as JailkeeperError).code;
        const status = code === 'JK_ERR_STORE' ? 503 : code === 'JK_ERR_CLOSED' ? 503 : 400;
        return failure(status, code, (error as Error).message);
      }
      return failure(500, 'JK_ERR_STORE', `The operation failed: ${(error as Error)?.message ?? error}`);
    }
  };

  const node = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const send = (response: AdminResponse) => {
      res.writeHead(response.status, response.headers);
      res.end(response.body);
    };
    const run = (body: unknown) =>
      handle({
        method: (req.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        peer: req.socket.remoteAddress,
        body,
      }).then(send, () => send(failure(500, 'JK_ERR_STORE', 'The admin API failed.')));
    const parsed = (req as { body?: unknown }).body;
    if (parsed !== undefined || req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') {
      void run(parsed);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        send(failure(413, 'JK_ERR_BAD_REQUEST', 'The body is over 64 KB.'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text === '') {
        void run(undefined);
        return;
      }
      try {
        void run(JSON.parse(text));
      } catch {
        send(failure(400, 'JK_ERR_BAD_REQUEST', 'The body is not valid JSON.'));
      }
    });
  };

  return { handle, node };
}
