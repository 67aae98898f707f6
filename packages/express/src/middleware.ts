import type { Server } from 'node:http';
import {
  type ClientIdentity,
  checkKeys,
  type GuardOptions,
  type Jailkeeper,
  JailkeeperError,
  pathOf,
  type RefusalOptions,
  type ResolvedRefusal,
  resolveRefusal,
  retryAfterSeconds,
  type Verdict,
} from '@jailkeeper/core';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Options of {@link jailkeeper}. */
export interface JailkeeperExpressOptions extends RefusalOptions {}

/** Per-route setting: `false` counts nothing on the route; `{ jails }` counts only in those jails. */
export type RouteConfig = false | { jails: string[] };

/** The middleware, with route-level helpers. */
export interface JailkeeperMiddleware extends RequestHandler {
  /** Route-level middleware: responses of this route never count (its 4xx are normal, like /ws). */
  exempt(): RequestHandler;
  /** Route-level middleware: `false` counts nothing here; `{ jails: ['login'] }` counts only in those jails. */
  route(config: RouteConfig): RequestHandler;
  /**
   * Guards the HTTP server: banned clients' upgrade (WebSocket) requests, which Express middleware
   * never sees, are refused. With `{ connection: true }`, banned direct peers are also dropped at
   * `connection`, before HTTP parsing. @default { upgrade: true, connection: false }
   * @example jk.guard(app.listen(3000));
   */
  guard(server: Server, options?: Omit<GuardOptions, 'block'>): () => void;
}

const OPTION_KEYS = { block: true, response: true, retryAfter: true } as const;
const kIdentity = Symbol('jailkeeper.identity');
const kJails = Symbol('jailkeeper.routeJails');
const NO_JAILS: ReadonlySet<string> = new Set();

type JkResponse = Response;

/**
 * The listener that counts a finished response, built once per middleware (it closes over the
 * keeper), so a request costs no new closure. `this` is the response.
 */
function countOnClose(keeper: Jailkeeper): (this: JkResponse) => void {
  return function onClose(this: JkResponse): void {
    const req = this.req;
    const identity = (this.locals as Record<symbol, ClientIdentity | undefined>)[kIdentity];
    const jails = (this.locals as Record<symbol, ReadonlySet<string> | undefined>)[kJails];
    if (identity === undefined || jails === NO_JAILS) return;
    if (!keeper.watchesStatus(this.statusCode)) return; // a clean response: nothing to build
    // The route the router chose (its pattern, with the mount path); none means no route matched.
    const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : null;
    // HEAD runs the GET route: count it as GET, so HEAD cannot dodge a jail limited to GET.
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    void keeper.observe({
      client: identity,
      method,
      route,
      path: pathOf(req.originalUrl),
      status: this.statusCode,
      userAgent: req.headers['user-agent'],
      ...(jails === undefined ? {} : { jails }),
    });
  };
}

function refuse(
  req: Request,
  res: Response,
  verdict: Verdict,
  identity: ClientIdentity,
  refusal: ResolvedRefusal,
  now: number,
) {
  if (refusal.drop && identity.viaProxy !== true) {
    req.socket.destroy();
    return;
  }
  res.statusCode = refusal.status;
  for (const [name, value] of refusal.headers) res.setHeader(name, value);
  if (refusal.retryAfter && verdict.banned) {
    const seconds = retryAfterSeconds(verdict.untilMs, now);
    if (seconds !== undefined) res.setHeader('retry-after', seconds);
  }
  res.end(refusal.body);
}

/**
 * Creates the Express middleware. Mount it first: a banned client is refused before any other
 * middleware or handler runs, its body unread.
 * @example
 * const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });
 * const jk = jailkeeper(keeper);
 * app.use(jk);
 * app.get('/ws', jk.exempt(), upgradeHandler);
 * jk.guard(app.listen(3000));
 */
export function jailkeeper(keeper: Jailkeeper, options: JailkeeperExpressOptions = {}): JailkeeperMiddleware {
  if (keeper === null || typeof keeper !== 'object' || typeof keeper.check !== 'function') {
    throw new TypeError('jailkeeper(keeper) needs a keeper from createJailkeeper() as its first argument.');
  }
  const input = checkKeys('jailkeeper options', options, OPTION_KEYS);
  const refusal = resolveRefusal('', input);
  const jailScope = keeper.hasJailScope;
  const onClose = countOnClose(keeper);

  const middleware = function jailkeeperMiddleware(req: Request, res: Response, next: NextFunction): void {
    const identity = keeper.resolve(req.socket.remoteAddress, req.headers, req);
    if (identity === undefined) {
      next();
      return;
    }
    // A failure of this client still being recorded (Redis): judge the request after it.
    const settling = keeper.settling(identity);
    if (settling !== undefined) {
      settling.then(() => decide(req, res, next, identity));
      return;
    }
    decide(req, res, next, identity);
  } as JailkeeperMiddleware;

  const decide = (req: Request, res: Response, next: NextFunction, identity: ClientIdentity): void => {
    // Before routing: app-scope bans; jail-scope bans judge the raw path and its normalised forms.
    const verdict = keeper.check(
      identity,
      jailScope ? { method: req.method, path: req.originalUrl } : undefined,
    );
    if (verdict.banned) {
      refuse(req, res, verdict, identity, refusal, keeper.clock.now());
      return;
    }
    keeper.trackConnection(req.socket, identity);
    // Kept in res.locals (a null-prototype object Express makes per request): a property added to
    // req or res themselves would reshape Node's objects for every access after it.
    (res.locals as Record<symbol, ClientIdentity>)[kIdentity] = identity;
    res.on('close', onClose);
    next();
  };

  middleware.route = (config: RouteConfig): RequestHandler => {
    let jails: ReadonlySet<string>;
    if (config === false) jails = NO_JAILS;
    else {
      const valid = checkKeys('route config', config, { jails: true });
      if (!Array.isArray(valid.jails)) {
        throw new TypeError('route config.jails must be an array of jail names, e.g. { jails: ["login"] }.');
      }
      for (const name of valid.jails as unknown[]) {
        if (typeof name !== 'string' || !keeper.options.jailsByName.has(name)) {
          throw new JailkeeperError(
            'JK_ERR_UNKNOWN_JAIL',
            `route config names the jail ${JSON.stringify(name)}, which is not configured; the jails are ${[...keeper.options.jailsByName.keys()].join(', ')}.`,
          );
        }
      }
      jails = new Set(valid.jails as string[]);
    }
    return function jailkeeperRoute(_req: Request, res: Response, next: NextFunction): void {
      (res.locals as Record<symbol, ReadonlySet<string>>)[kJails] = jails;
      next();
    };
  };
  middleware.exempt = () => middleware.route(false);
  middleware.guard = (server: Server, guardOptions: Omit<GuardOptions, 'block'> = {}) =>
    keeper.guard(server, {
      upgrade: guardOptions.upgrade ?? true,
      connection: guardOptions.connection ?? false,
      block: refusal.drop ? 'drop' : 'forbid',
    });
  return middleware;
}
