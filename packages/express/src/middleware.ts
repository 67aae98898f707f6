import type { Server } from 'node:http';
import type { ClientIdentity, GuardOptions, Jailkeeper, Verdict } from '@jailkeeper/core';
import {
  afterSettling,
  checkKeys,
  compileRouteConfig,
  countResponse,
  type RefusalOptions,
  type RefusalWriter,
  type RouteConfig,
  type RouteJails,
  requireKeeper,
  resolveRefusal,
  responseCounted,
  responseOpened,
  writeRefusal,
} from '@jailkeeper/core/adapter';
import type { Application, NextFunction, Request, RequestHandler, Response } from 'express';
import { AppTrusts, appTrust, serverApp } from './app-trust.js';

/** Options of {@link jailkeeper}. */
export interface JailkeeperExpressOptions extends RefusalOptions {}

export type { RouteConfig };

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
  guard(server: Server, options?: JailkeeperGuardOptions): () => void;
}

/** Options of `jk.guard(server, options)`. */
export interface JailkeeperGuardOptions extends Omit<GuardOptions, 'block' | 'trust'> {
  /**
   * With `trustedProxies: 'express'`: the app whose `trust proxy` setting judges upgrade requests.
   * @default the app the server was created with (`app.listen()`, `http.createServer(app)`)
   */
  app?: Application;
}

const OPTION_KEYS = { block: true, response: true, retryAfter: true } as const;
const kIdentity = Symbol('jailkeeper.identity');
const kJails = Symbol('jailkeeper.routeJails');

/** What the middleware keeps in `res.locals`, a null-prototype object Express makes per request. */
type Locals = { [kIdentity]?: ClientIdentity; [kJails]?: RouteJails };

const writer: RefusalWriter<Response> = {
  drop: (res) => res.req.socket.destroy(),
  status: (res, status) => {
    res.statusCode = status;
  },
  header: (res, name, value) => res.setHeader(name, value),
  send: (res, body) => res.end(body),
};

/**
 * The listener that counts a finished response, built once per middleware (it closes over the
 * keeper), so a request costs no new closure. `this` is the response.
 */
function countOnClose(keeper: Jailkeeper): (this: Response) => void {
  return function onClose(this: Response): void {
    const locals = this.locals as Locals;
    const identity = locals[kIdentity];
    if (identity === undefined) return;
    if (keeper.watchesStatus(this.statusCode)) count(this, identity, locals[kJails]);
    responseCounted(keeper);
  };

  function count(res: Response, identity: ClientIdentity, jails: RouteJails): void {
    const req = res.req;
    // The route the router chose (its pattern, with the mount path); none means no route matched.
    const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : null;
    countResponse(
      keeper,
      identity,
      req.method,
      route,
      req.originalUrl,
      res.statusCode,
      req.headers['user-agent'],
      jails,
    );
  }
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
export function jailkeeper(
  keeperArg: Jailkeeper,
  options: JailkeeperExpressOptions = {},
): JailkeeperMiddleware {
  const keeper = requireKeeper(keeperArg, 'jailkeeper(keeper)', { expressTrust: true });
  const refusal = resolveRefusal('', checkKeys('jailkeeper options', options, OPTION_KEYS));
  const jailScope = keeper.hasJailScope;
  const onClose = countOnClose(keeper);
  // With trustedProxies: 'express', the app's own trust proxy function, looked up once per app.
  const trusts = keeper.options.clientIp.trust.kind === 'express' ? new AppTrusts(keeper) : undefined;

  const decide = (req: Request, res: Response, next: NextFunction, identity: ClientIdentity): void => {
    // Before routing: app-scope bans; jail-scope bans judge the raw path and its normalised forms.
    const verdict: Verdict = keeper.check(
      identity,
      jailScope ? { method: req.method, path: req.originalUrl } : undefined,
    );
    if (verdict.banned) {
      writeRefusal(writer, res, refusal, verdict, identity, keeper.clock.now());
      return;
    }
    keeper.trackConnection(req.socket, identity);
    // Kept in res.locals: a property added to req or res themselves would reshape Node's objects
    // for every access after it.
    (res.locals as Locals)[kIdentity] = identity;
    responseOpened(keeper);
    res.on('close', onClose);
    next();
  };

  const middleware = function jailkeeperMiddleware(req: Request, res: Response, next: NextFunction): void {
    const identity = keeper.resolve(
      req.socket.remoteAddress,
      req.headers,
      req,
      trusts === undefined ? undefined : trusts.of(req.app),
    );
    if (identity === undefined) next();
    // A failure of this client still being recorded (Redis): judge the request after it.
    else afterSettling(keeper, identity, decide, req, res, next);
  } as JailkeeperMiddleware;

  middleware.route = (config: RouteConfig): RequestHandler => {
    const jails = compileRouteConfig(keeper.options.jailsByName.keys(), 'route config', config);
    return function jailkeeperRoute(_req: Request, res: Response, next: NextFunction): void {
      (res.locals as Locals)[kJails] = jails;
      next();
    };
  };
  middleware.exempt = () => middleware.route(false);
  middleware.guard = (server: Server, guardOptions: JailkeeperGuardOptions = {}) =>
    keeper.guard(server, {
      upgrade: guardOptions.upgrade ?? true,
      connection: guardOptions.connection ?? false,
      block: refusal.drop ? 'drop' : 'forbid',
      trust: trusts === undefined ? undefined : appTrust(keeper, guardOptions.app ?? serverApp(server)),
    });
  return middleware;
}
