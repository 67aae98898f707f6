import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Jailkeeper } from '@jailkeeper/core';
import {
  type AdapterOptions,
  type ClientIdentity,
  createAdapterKit,
  type GuardOptions,
  invalid,
  JailkeeperConfigError,
  type RefusalInfo,
  type RefusalWriter,
  type RouteConfig,
  type Targets,
} from '@jailkeeper/core/adapter';
import type { Application, NextFunction, Request, RequestHandler, Response } from 'express';
import { AppTrusts, appTrust, serverApp } from './app-trust.js';
import {
  ExpressAttempt,
  Instrumenter,
  kMiddleware,
  kRouteJails,
  kState,
  mountsOf,
  routerOf,
  stateOf,
} from './instrument.js';

/** Options of {@link jailkeeper}: see the options table in the README. */
export interface JailkeeperExpressOptions extends AdapterOptions<Request, Response> {
  /**
   * Reads a route's config from its handler, for frameworks that declare routes on Express
   * themselves (NestJS, whose decorators `@jailkeeper/nestjs` reads this way): called once per
   * handler of each route, when the router is first walked. `jk.route()` on the route wins.
   */
  routeConfigOf?: (handler: Function) => RouteConfig | undefined;
}

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
  /**
   * The client jailkeeper resolved for this request (`{ ip, key, viaProxy? }`), for the app's own
   * logs; undefined when the middleware did not admit it (skipped, or no peer address).
   */
  client(req: Request): ClientIdentity | undefined;
  /**
   * Marks this request failed, whatever its status: GraphQL and JSON-RPC answer 200 with errors,
   * and some failures only the app knows. It counts when the response closes, in every jail whose
   * methods, paths and user agents apply, or only in `jails`. Returns false when the request was
   * not admitted by the middleware. Throws JK_ERR_UNKNOWN_JAIL for a jail that is not configured.
   */
  fail(req: Request, options?: { jails?: string[] }): boolean;
  /**
   * Names the account this request tries (a login's user name, an API key's id), once the app
   * knows it (after body parsing): the jails keyed by account (`key: 'account'` or
   * `'account+address'`) judge it now. Resolves true to go on; false when jailkeeper refused the
   * request (it has answered: return without answering). See docs/accounts.md.
   * @example
   * app.post('/login', express.json(), async (req, res) => {
   *   if (!(await jk.account(req, req.body?.username))) return;
   *   // check the password...
   * });
   */
  account(req: Request, name: unknown): Promise<boolean>;
}

/** Options of `jk.guard(server, options)`. */
export interface JailkeeperGuardOptions extends Omit<GuardOptions, 'block' | 'trust'> {
  /**
   * With `trustedProxies: 'express'`: the app whose `trust proxy` setting judges upgrade requests.
   * @default the app the server was created with (`app.listen()`, `http.createServer(app)`)
   */
  app?: Application;
}

type Locals = Record<symbol, ExpressAttempt | undefined>;
const NONE: Targets = Object.freeze([]);

const writer: RefusalWriter<Response> = {
  drop: (res) => res.req.socket.destroy(),
  status: (res, status) => {
    res.statusCode = status;
  },
  header: (res, name, value) => res.setHeader(name, value),
  send: (res, body) => res.end(body),
};

function registeredTwice(): JailkeeperConfigError {
  return new JailkeeperConfigError(
    'JK_ERR_REGISTERED_TWICE',
    'jailkeeper middleware',
    'The jailkeeper middleware is mounted twice on this app: every attempt would take two slots, so logins would wait and be refused (429) instead of banned. Mount it once, first, on the root app (sub-apps see it).',
  );
}

/** The request's state, when the middleware admitted it. */
function stateOfRequest(req: Request): ExpressAttempt | undefined {
  return req.res === undefined ? undefined : stateOf(req.res as never);
}

/**
 * Creates the Express middleware. Mount it first: a banned client is refused before any other
 * middleware or handler runs, its body unread. Counting, exemptions and the routes jails target
 * follow the route Express itself chose (routers mounted with `app.use`, parameters, arrays,
 * handlers mounted at a path), whatever spelling of the path reached it.
 * @example
 * const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });
 * await keeper.ready;
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
    extraKeys: { routeConfigOf: true },
    abilities: { expressTrust: true },
    writer,
    ...(options.onRefused === undefined
      ? {}
      : { onRefused: (res: Response, info: RefusalInfo) => options.onRefused?.(res.req, res, info) }),
  });
  const skip = options.skip;
  const routeConfigOf = options.routeConfigOf;
  if (routeConfigOf !== undefined && typeof routeConfigOf !== 'function')
    invalid('jailkeeper options.routeConfigOf', 'a function', routeConfigOf);
  // With trustedProxies: 'express', the app's own trust proxy function, looked up once per app.
  const trusts = keeper.options.clientIp.trust.kind === 'express' ? new AppTrusts(keeper) : undefined;

  // At a route (or a handler mounted with app.use), after routing, the attempt judges jail-scope
  // bans on the method the router runs and the route it chose, and reserves its slots.
  const instrumenter = new Instrumenter(kit, {
    configOf:
      routeConfigOf === undefined
        ? undefined
        : (handler) => {
            const config = routeConfigOf(handler);
            return config === undefined ? undefined : kit.compileRoute(config);
          },
  });

  const decide = (
    req: Request,
    res: Response,
    next: NextFunction,
    identity: ClientIdentity,
    socket: Socket,
    headers: Request['headers'],
  ): void => {
    // Each read of req's or res's own properties costs V8 a lookup on Express (their prototype is
    // set again on every request): each is read once here.
    const app = req.app;
    const root = routerOf(app as never);
    // Before routing: app-scope bans; jail-scope bans on the path as the app's router reads it
    // (no other spelling: it may be another route's), then at the route Express chose.
    const attempt = new ExpressAttempt(
      kit,
      identity,
      res,
      res,
      req.method,
      req.originalUrl,
      headers['user-agent'],
      kit.jailScope && root?.caseSensitive !== true,
      req,
      socket,
      headers,
    );
    if (attempt.refused()) return;
    attempt.caseInsensitive = false;
    attempt.root = root;
    instrumenter.app(app as never, true);
    // A client with failures in an app-wide jail takes a slot there for every request.
    const admitted = attempt.admit(NONE, true);
    if (admitted === true) run(res, attempt, next);
    else admitted.then((go) => go && run(res, attempt, next)).catch(next);
  };
  const run = (res: Response, attempt: ExpressAttempt, next: NextFunction): void => {
    // Kept in res.locals: a property added to req or res themselves would reshape Node's objects
    // for every access after it. An app's locals that cannot take it (null, frozen, set before
    // the middleware) leaves it to the response's close listener (stateOf).
    const locals = res.locals as Locals | null | undefined;
    if (typeof locals === 'object' && locals !== null) {
      try {
        locals[kState] = attempt;
      } catch {
        // frozen, sealed, or a Proxy that refuses it: found from the response instead
      }
    }
    attempt.open();
    next();
  };

  const middleware = function jailkeeperMiddleware(req: Request, res: Response, next: NextFunction): void {
    const socket = req.socket;
    const admitted = stateOf(res as never, socket);
    if (admitted !== undefined) {
      if (routerOf(req.app as never) === admitted.root) {
        // Twice on one app (another middleware, or this one mounted twice): each copy would take
        // its own slot for every attempt.
        if (admitted.kit !== kit || (admitted.root !== undefined && mountsOf(admitted.root) > 1)) {
          next(registeredTwice());
          return;
        }
        // Once, the request dispatched again through the app (app.handle(req, res, next), an SPA
        // fallback): the attempt it has goes on, and the routes it enters now say its jails (an
        // exempt route that dispatched it to the login made the login's failures count nowhere),
        // while a dispatch that finds no route leaves the exempt route's answer exempt.
        admitted.redispatched = true;
        next();
        return;
      }
      // Mounted again in a sub-app: the request is admitted already; learn the sub-app's routes.
      instrumenter.enterApp(req.app as never, admitted);
      next();
      return;
    }
    const trust = trusts === undefined ? undefined : trusts.of(req.app);
    const headers = req.headers;
    const identity = keeper.resolve(socket.remoteAddress, headers, req, trust);
    if (identity === undefined || skip?.(req) === true) {
      next();
      return;
    }
    // The store still loading, or a failure of this client still being recorded (Redis).
    const ready = kit.ready(identity);
    if (ready === undefined) decide(req, res, next, identity, socket, headers);
    else ready.then(() => decide(req, res, next, identity, socket, headers)).catch(next);
  } as JailkeeperMiddleware;
  (middleware as { [kMiddleware]?: true })[kMiddleware] = true;

  middleware.route = (config: RouteConfig): RequestHandler => {
    const jails = kit.compileRoute(config);
    const handler = function jailkeeperRoute(_req: Request, res: Response, next: NextFunction): void {
      const state = stateOf(res as never);
      if (state !== undefined) {
        state.jails = jails;
        state.redispatched = false;
      }
      next();
    };
    return Object.assign(handler, { [kRouteJails]: jails });
  };
  middleware.exempt = () => middleware.route(false);
  middleware.client = (req: Request) => stateOfRequest(req)?.identity;
  middleware.account = async (req: Request, name: unknown) => stateOfRequest(req)?.nameAccount(name) ?? true;
  middleware.fail = (req: Request, failOptions: { jails?: string[] } = {}) => {
    const jails = failOptions.jails === undefined ? undefined : kit.failJails(failOptions.jails);
    return stateOfRequest(req)?.fail(jails) ?? false;
  };
  middleware.guard = (server: Server, guardOptions: JailkeeperGuardOptions = {}) =>
    kit.guard(server, {
      ...(guardOptions.upgrade === undefined ? {} : { upgrade: guardOptions.upgrade }),
      ...(guardOptions.connection === undefined ? {} : { connection: guardOptions.connection }),
      ...(trusts === undefined ? {} : { trust: appTrust(keeper, guardOptions.app ?? serverApp(server)) }),
    });
  return middleware;
}
