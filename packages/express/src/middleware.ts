import type { Server } from 'node:http';
import type { ClientIdentity, GuardOptions, Jailkeeper } from '@jailkeeper/core';
import {
  type AdapterKit,
  createAdapterKit,
  type RefusalOptions,
  type RefusalWriter,
  type RouteConfig,
  type RouteJails,
} from '@jailkeeper/core/adapter';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

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
  guard(server: Server, options?: Omit<GuardOptions, 'block'>): () => void;
}

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
 * kit), so a request costs no new closure. `this` is the response.
 */
function countOnClose(kit: AdapterKit): (this: Response) => void {
  return function onClose(this: Response): void {
    const locals = this.locals as Locals;
    const identity = locals[kIdentity];
    if (identity === undefined) return;
    if (kit.watches(this.statusCode)) {
      const req = this.req;
      // The route the router chose (its pattern, with the mount path); none means no route matched.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : null;
      const ua = req.headers['user-agent'];
      kit.count(identity, req.method, route, req.originalUrl, this.statusCode, ua, locals[kJails]);
    }
    kit.closed();
  };
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
  const kit = createAdapterKit({
    keeper,
    keeperAt: 'jailkeeper(keeper)',
    options,
    optionsAt: 'jailkeeper options',
  });
  const onClose = countOnClose(kit);

  const decide = (req: Request, res: Response, next: NextFunction, identity: ClientIdentity): void => {
    // Before routing: app-scope bans; jail-scope bans judge the raw path and its normalised forms.
    const verdict = keeper.check(
      identity,
      kit.jailScope ? { method: req.method, path: req.originalUrl } : undefined,
    );
    if (verdict.banned) {
      kit.refuse(writer, res, verdict, identity);
      return;
    }
    keeper.trackConnection(req.socket, identity);
    // Kept in res.locals: a property added to req or res themselves would reshape Node's objects
    // for every access after it.
    (res.locals as Locals)[kIdentity] = identity;
    kit.opened();
    res.on('close', onClose);
    next();
  };

  const middleware = function jailkeeperMiddleware(req: Request, res: Response, next: NextFunction): void {
    const identity = keeper.resolve(req.socket.remoteAddress, req.headers, req);
    if (identity === undefined) next();
    // A failure of this client still being recorded (Redis): judge the request after it.
    else kit.admit(identity, decide, req, res, next);
  } as JailkeeperMiddleware;

  middleware.route = (config: RouteConfig): RequestHandler => {
    const jails = kit.compileRoute(config);
    return function jailkeeperRoute(_req: Request, res: Response, next: NextFunction): void {
      (res.locals as Locals)[kJails] = jails;
      next();
    };
  };
  middleware.exempt = () => middleware.route(false);
  middleware.guard = (server: Server, guardOptions: Omit<GuardOptions, 'block'> = {}) =>
    kit.guard(server, guardOptions);
  return middleware;
}
