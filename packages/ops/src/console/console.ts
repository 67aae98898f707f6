import { type Duration, JailkeeperError } from '@jailkeeper/core';
import { checkKeys, toDurationMs } from '@jailkeeper/core/adapter';
import type { Ban } from '@jailkeeper/core/store';
import { type AdminGate, callerKey, unauthorized } from '../admin-gate.js';
import { type AdminRequest, type AdminResponse, errorResponse, failure, json } from '../admin-http.js';
import { banJson } from '../ban-json.js';
import { parseBanQuery } from '../ban-pager.js';
import { type Asset, loadAssets } from './assets.js';
import { type AuditEntry, type AuditLog, cleanText } from './audit-log.js';
import type { ConsoleBackend } from './backend.js';
import { Feed } from './feed.js';
import { type ConsoleSession, csrfMatches, SessionStore, sessionCookie } from './sessions.js';
import { Timeline } from './timeline.js';

/** Options of the console (`console: true` or these, in the admin options). */
export interface ConsoleOptions {
  /** A session unused this long ends. @default '1h' */
  idleTimeout?: Duration;
  /** A session ends this long after sign-in, used or not. @default '12h' */
  maxAge?: Duration;
}

const KEYS = { idleTimeout: true, maxAge: true } as const;

/**
 * No inline script or style, nothing from elsewhere, no framing; Trusted Types, so the only way
 * from a string to HTML is lit-html's own policy (its templates escape every value).
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
    "require-trusted-types-for 'script'; trusted-types lit-html",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The console's handler, mounted by the admin API (or the CLI) at `/console`. */
export interface ConsoleHandler {
  /** Handles a request whose path is below `/console` (`''`, `/`, `/app.js`, `/api/bans`). */
  handle(request: AdminRequest, path: string): Promise<AdminResponse>;
  readonly feed: Feed;
  readonly timeline: Timeline;
  close(): void;
}

function withHeaders(response: AdminResponse, extra: Record<string, string> = {}): AdminResponse {
  return { ...response, headers: { ...response.headers, ...SECURITY_HEADERS, ...extra } };
}

function text(body: unknown, name: string, max: number, required: boolean): string | undefined {
  const value =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (value === undefined || value === '') {
    if (!required) return undefined;
  } else if (typeof value === 'string' && value.length <= max) return value;
  throw new JailkeeperError(
    'JK_ERR_BAD_REQUEST',
    `The JSON body needs "${name}" as a${required ? ' non-empty' : ''} string of at most ${max} characters.`,
  );
}

/**
 * The operators' console: a page (served from the package, no CDN) and its JSON API under
 * `/console/api/`. Signing in posts the token once; the session is an HttpOnly SameSite=Strict
 * cookie, every state-changing call also carries the session's CSRF token in a header, and wrong
 * tokens are counted by the same gate as the admin API's.
 */
export function createConsoleHandler(
  backend: ConsoleBackend,
  context: { gate: AdminGate; audit: AuditLog; options: ConsoleOptions | true; path: string },
): ConsoleHandler {
  const { gate, audit } = context;
  const input = checkKeys(context.path, context.options === true ? {} : context.options, KEYS);
  const idleMs =
    input.idleTimeout === undefined
      ? 3_600_000
      : toDurationMs(`${context.path}.idleTimeout`, input.idleTimeout);
  const maxAgeMs =
    input.maxAge === undefined ? 43_200_000 : toDurationMs(`${context.path}.maxAge`, input.maxAge);
  const now = () => backend.now();
  const sessions = new SessionStore({ idleMs, maxAgeMs, now });
  const assets: Map<string, Asset> = loadAssets(context.path);
  const timeline = new Timeline(now);
  let stopRefusals: (() => void) | undefined;
  const feed = new Feed(now, (active) => {
    if (active) stopRefusals ??= backend.watchRefusals?.((jail, client) => feed.refusal(jail, client));
    else {
      stopRefusals?.();
      stopRefusals = undefined;
    }
  });
  backend.attach({ feed, timeline });
  audit.subscribe((entry: AuditEntry) => {
    if (entry.action !== 'sign-in' && entry.action !== 'sign-out') feed.publish({ type: 'audit', ...entry });
  });

  const record = (
    request: AdminRequest,
    session: ConsoleSession,
    action: AuditEntry['action'],
    target: string,
    ok: boolean,
    detail: string,
  ) =>
    audit.record({
      atMs: now(),
      who: session.who,
      via: 'console',
      from: callerKey(request.peer),
      action,
      target: cleanText(target, 120),
      ok,
      detail: cleanText(detail, 300),
    });

  /** Runs an operator's change and records it in the audit log, done (with `detail`) or refused. */
  const audited = async <T>(
    request: AdminRequest,
    session: ConsoleSession,
    action: AuditEntry['action'],
    target: string,
    change: () => Promise<T>,
    detail: (result: T) => string,
  ): Promise<T> => {
    try {
      const result = await change();
      record(request, session, action, target, true, detail(result));
      return result;
    } catch (error) {
      record(request, session, action, target, false, (error as Error).message);
      throw error;
    }
  };

  const row = (ban: Ban) => ({
    ...banJson(ban),
    timeLeftMs: ban.endMs === Number.POSITIVE_INFINITY ? null : Math.max(0, ban.endMs - now()),
    scope: backend.scopeOf(ban.jail),
    origin: ban.manual ? 'manual' : (backend.originOf(ban) ?? null),
  });

  /** A state-changing call: the session's CSRF header, same-origin, and JSON (never a form post). */
  const checkChange = (request: AdminRequest, session: ConsoleSession): AdminResponse | undefined => {
    if (!csrfMatches(session, request.headers['x-jailkeeper-csrf'])) {
      return failure(
        403,
        'JK_ERR_ADMIN_FORBIDDEN',
        'The console CSRF token is missing or wrong; reload the page.',
      );
    }
    return crossSite(request);
  };

  const api = async (request: AdminRequest, route: string): Promise<AdminResponse> => {
    const { method } = request;
    if (route === '/session' && method === 'POST') return signIn(request);
    const session = sessions.fromCookie(request.headers.cookie);
    if (session === undefined) {
      return failure(401, 'JK_ERR_ADMIN_UNAUTHORIZED', 'Sign in to the console first.');
    }
    if (method !== 'GET') {
      const refused = checkChange(request, session);
      if (refused !== undefined) return refused;
    }
    switch (`${method} ${route}`) {
      case 'GET /session':
        return json(200, { who: session.who, csrf: session.csrf, where: backend.where, nowMs: now() });
      case 'DELETE /session':
        sessions.close(session);
        record(request, session, 'sign-out', session.who, true, '');
        return json(
          200,
          { signedOut: true },
          { 'set-cookie': sessionCookie(undefined, request.secure === true) },
        );
      case 'GET /overview': {
        const [jails, ignore] = await Promise.all([backend.jails(), backend.ignoreList()]);
        return json(200, {
          where: backend.where,
          nowMs: now(),
          jails,
          health: backend.health(),
          ignore,
          lockedOut: gate.lockout.locked(),
        });
      }
      case 'GET /bans': {
        const page = await backend.pager.page(parseBanQuery(request.query));
        return json(200, { ...page, bans: page.bans.map(row), nowMs: now() });
      }
      case 'POST /bans': {
        const address = text(request.body, 'address', 100, true) as string;
        const options = {
          jail: text(request.body, 'jail', 64, false),
          duration: text(request.body, 'duration', 20, false),
          reason: cleanText(text(request.body, 'reason', 200, false) ?? '', 200) || undefined,
        };
        const ban = await audited(
          request,
          session,
          'ban',
          address,
          async () => {
            const ban = await backend.ban(address, options);
            backend.pager.invalidate();
            return ban;
          },
          (ban) => `${ban.jail}, ${options.duration ?? 'default time'}`,
        );
        return json(201, { ban: row(ban) });
      }
      case 'DELETE /bans': {
        const address = request.query.get('address');
        if (address === null || address === '' || address.length > 100) {
          throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'DELETE /console/api/bans needs ?address=<ip>.');
        }
        const jail = request.query.get('jail') || undefined;
        const lifted = await audited(
          request,
          session,
          'unban',
          address,
          async () => {
            const lifted = await backend.unban(address, jail);
            backend.pager.invalidate();
            return lifted;
          },
          (lifted) => `${lifted.length} ban(s) lifted${jail ? ` in ${jail}` : ''}`,
        );
        return json(200, { lifted: lifted.map((b) => banJson(b)) });
      }
      case 'GET /ignore':
        return json(200, { entries: await backend.ignoreList() });
      case 'POST /ignore':
      case 'DELETE /ignore': {
        const adding = method === 'POST';
        const entry = adding ? text(request.body, 'entry', 100, true) : request.query.get('entry');
        if (entry === null || entry === undefined || entry === '' || entry.length > 100) {
          throw new JailkeeperError('JK_ERR_BAD_REQUEST', 'DELETE /console/api/ignore needs ?entry=<cidr>.');
        }
        const action = adding ? 'ignore-add' : 'ignore-remove';
        const changed = await audited(
          request,
          session,
          action,
          entry,
          () => (adding ? backend.ignoreAdd(entry) : backend.ignoreRemove(entry)),
          (changed) => (changed.length === 0 ? 'nothing changed' : changed.join(', ')),
        );
        return json(200, adding ? { added: changed } : { removed: changed });
      }
      case 'GET /jails':
        return json(200, { jails: await backend.jailNames() });
      case 'GET /timeline':
        backend.sample?.();
        return json(200, { ...timeline.series(), charted: backend.charted, nowMs: now() });
      case 'GET /feed':
        return json(200, { events: feed.recent().reverse() });
      case 'GET /events': {
        const last = Number(request.headers['last-event-id']);
        return {
          status: 200,
          headers: {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-store',
            'x-accel-buffering': 'no',
          },
          body: feed.open(Number.isSafeInteger(last) ? last : undefined, () => sessions.isLive(session)),
        };
      }
      case 'GET /audit':
        return json(200, { entries: audit.list(200) });
      default:
        return failure(404, 'JK_ERR_BAD_REQUEST', `No console route ${method} /console/api${route}.`);
    }
  };

  const signIn = async (request: AdminRequest): Promise<AdminResponse> => {
    const refused = crossSite(request);
    if (refused !== undefined) return refused;
    const token = text(request.body, 'token', 1000, false);
    if (token === undefined) return unauthorized();
    const wrong = gate.verify(token, request);
    if (wrong !== undefined) return wrong;
    const who = cleanText(text(request.body, 'name', 100, false), 40) || 'operator';
    const session = sessions.open(who, callerKey(request.peer));
    record(request, session, 'sign-in', who, true, '');
    return json(
      200,
      { who, csrf: session.csrf, where: backend.where, nowMs: now() },
      { 'set-cookie': sessionCookie(session.id, request.secure === true) },
    );
  };

  return {
    feed,
    timeline,
    async handle(request, path) {
      if (path === '') {
        // `<mount>/console` → `<mount>/console/`, so the page's relative URLs resolve below it.
        return withHeaders({ status: 308, headers: { location: 'console/' }, body: '' });
      }
      if (path.startsWith('/api/')) {
        try {
          return withHeaders(await api(request, path.slice(4)));
        } catch (error) {
          return withHeaders(errorResponse(error));
        }
      }
      if (request.method !== 'GET') return withHeaders(failure(405, 'JK_ERR_BAD_REQUEST', 'Only GET here.'));
      const asset = assets.get(path === '/' ? 'index.html' : path.slice(1));
      if (asset === undefined)
        return withHeaders(failure(404, 'JK_ERR_BAD_REQUEST', 'No such console file.'));
      return withHeaders({
        status: 200,
        headers: { 'content-type': asset.type, 'cache-control': 'no-cache' },
        body: asset.body,
      });
    },
    close() {
      feed.close();
      backend.detach();
    },
  };
}

/** A browser that says the call came from another site (Sec-Fetch-Site) is refused. */
function crossSite(request: AdminRequest): AdminResponse | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    return failure(403, 'JK_ERR_ADMIN_FORBIDDEN', 'The console answers its own pages only.');
  }
  return undefined;
}
