import type { Server } from 'node:http';
import type { Jailkeeper } from '@jailkeeper/core';
import {
  type AdapterKit,
  type AdapterOptions,
  type Banned,
  type ClientIdentity,
  createAdapterKit,
  type GuardOptions,
  invalid,
  mergeFailed,
  mergeSlots,
  onResponseClose,
  pathOf,
  type RefusalInfo,
  type RefusalWriter,
  type RouteConfig,
  type Slots,
  type Targets,
} from '@jailkeeper/core/adapter';
import type { Application, NextFunction, Request, RequestHandler, Response } from 'express';
import { AppTrusts, appTrust, serverApp } from './app-trust.js';
import { Instrumenter, kRouteJails, kState, type RequestState, routerOf } from './instrument.js';

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

type Locals = Record<symbol, RequestState | undefined>;
const NONE: Targets = Object.freeze([]);

const writer: RefusalWriter<Response> = {
  drop: (res) => res.req.socket.destroy(),
  status: (res, status) => {
    res.statusCode = status;
  },
  header: (res, name, value) => res.setHeader(name, value),
  send: (res, body) => res.end(body),
};

/**
 * The listener that counts a finished (or abandoned) response, built once per middleware: `this`
 * is the response, so a request costs no new closure.
 */
function countOnClose(kit: AdapterKit): (this: Response) => void {
  return function onClose(this: Response): void {
    const state = (this.locals as Locals)[kState];
    if (state === undefined) return;
    state.closed = true;
    if (kit.watches(this.statusCode, state.slots, state.failed)) {
      const req = this.req;
      kit.count({
        identity: state.identity,
        method: req.method,
        route: state.route,
        caseInsensitive: state.caseInsensitive,
        url: req.originalUrl,
        status: this.statusCode,
        userAgent: req.headers['user-agent'],
        jails: state.jails,
        slots: state.slots,
        abandoned: !this.writableEnded,
        failed: state.failed,
        account: state.account,
      });
    }
    kit.closed();
  };
}

/** The request's state, when the middleware admitted it. */
function stateOf(req: Request): RequestState | undefined {
  return (req.res?.locals as Locals | undefined)?.[kState];
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
    ...(options.onRefused === undefined
      ? {}
      : { onRefused: (res: Response, info: RefusalInfo) => options.onRefused?.(res.req, res, info) }),
  });
  const skip = options.skip;
  const routeConfigOf = options.routeConfigOf;
  if (routeConfigOf !== undefined && typeof routeConfigOf !== 'function')
    invalid('jailkeeper options.routeConfigOf', 'a function', routeConfigOf);
  const onClose = countOnClose(kit);
  // With trustedProxies: 'express', the app's own trust proxy function, looked up once per app.
  const trusts = keeper.options.clientIp.trust.kind === 'express' ? new AppTrusts(keeper) : undefined;

  const refuse = (res: Response, identity: ClientIdentity, verdict: Banned | null): void =>
    kit.refuse(writer, res, verdict, identity);

  // At a route (or a handler mounted with app.use), after routing: jail-scope bans judged on the
  // method the router runs and the route it chose; the attempt's slots reserved.
  const instrumenter = new Instrumenter(kit, {
    configOf:
      routeConfigOf === undefined
        ? undefined
        : (handler) => {
            const config = routeConfigOf(handler);
            return config === undefined ? undefined : kit.compileRoute(config);
          },
    refused(res, state) {
      // The state is the request as check() reads it: nothing is built for a clean client.
      const verdict = keeper.check(state.identity, state);
      if (!verdict.banned) return false;
      kit.refuse(writer, res as unknown as Response, verdict, state.identity);
      return true;
    },
    admit(res, state, targets, proceed) {
      kit.admitThen(
        state.identity,
        targets,
        atRoute,
        refusedAtRoute,
        res as unknown as Response,
        proceed,
        0,
        false,
      );
    },
  });
  const atRoute = (
    res: Response,
    proceed: (slots: Slots | null) => void,
    _: 0,
    identity: ClientIdentity,
    slots: Slots | null,
  ) => {
    const state = (res.locals as Locals)[kState];
    if (slots !== null && state?.closed === true) {
      // The client left while the attempt waited for its slot: the response was counted without
      // it, so this slot is settled now, as an abandoned attempt.
      settleLate(res, state, identity, slots);
      proceed(null);
      return;
    }
    proceed(slots);
  };
  /** Slots reserved after the response closed (the client left meanwhile): settled at once, abandoned. */
  const settleLate = (res: Response, state: RequestState, identity: ClientIdentity, slots: Slots): void => {
    const req = res.req;
    kit.count({
      identity,
      method: req.method,
      route: state.route,
      caseInsensitive: state.caseInsensitive,
      url: req.originalUrl,
      status: res.statusCode,
      userAgent: req.headers['user-agent'],
      jails: state.jails,
      slots,
      abandoned: true,
      failed: state.failed,
      account: state.account,
    });
  };
  const refusedAtRoute = (
    res: Response,
    _p: unknown,
    _: 0,
    identity: ClientIdentity,
    verdict: Banned | null,
  ) => refuse(res, identity, verdict);

  const go = (
    req: Request,
    res: Response,
    next: NextFunction,
    identity: ClientIdentity,
    slots: Slots | null,
  ) => {
    keeper.trackConnection(req.socket, identity);
    // Kept in res.locals: a property added to req or res themselves would reshape Node's objects
    // for every access after it.
    const state: RequestState = {
      identity,
      slots,
      method: req.method,
      path: req.originalUrl,
      route: null,
      caseInsensitive: false,
      jails: undefined,
      root: routerOf(req.app as never),
      mounts: null,
      failed: undefined,
      account: undefined,
      closed: false,
    };
    (res.locals as Locals)[kState] = state;
    kit.opened();
    // Also when the client left while the request waited, or the response is queued behind a
    // pipelined one: Node emits no 'close' then, and the attempt's slots would never settle.
    onResponseClose(res, onClose);
    next();
  };
  const stop = (
    _req: Request,
    res: Response,
    _next: NextFunction,
    identity: ClientIdentity,
    verdict: Banned | null,
  ) => refuse(res, identity, verdict);

  const decide = (req: Request, res: Response, next: NextFunction, identity: ClientIdentity): void => {
    // Before routing: app-scope bans; jail-scope bans on the path as the app's router reads it
    // (no other spelling: it may be another route's), then at the route Express chose.
    const verdict = keeper.check(
      identity,
      kit.jailScope
        ? {
            method: req.method,
            route: null,
            path: req.originalUrl,
            caseInsensitive: instrumenter.ignoresCase(req.app as never),
          }
        : undefined,
    );
    if (verdict.banned) {
      kit.refuse(writer, res, verdict, identity);
      return;
    }
    instrumenter.app(req.app as never);
    // A client with failures in an app-wide jail takes a slot there for every request.
    kit.admitThen(identity, NONE, go, stop, req, res, next);
  };

  const middleware = function jailkeeperMiddleware(req: Request, res: Response, next: NextFunction): void {
    if ((res.locals as Locals)[kState] !== undefined) {
      // Mounted again in a sub-app: the request is admitted already; learn the sub-app's routes.
      instrumenter.enterApp(req.app as never, (res.locals as Locals)[kState] as RequestState);
      next();
      return;
    }
    const trust = trusts === undefined ? undefined : trusts.of(req.app);
    const identity = keeper.resolve(req.socket.remoteAddress, req.headers, req, trust);
    if (identity === undefined || skip?.(req) === true) next();
    // A failure of this client still being recorded (Redis): judge the request after it.
    else kit.admit(identity, decide, req, res, next);
  } as JailkeeperMiddleware;

  middleware.route = (config: RouteConfig): RequestHandler => {
    const jails = kit.compileRoute(config);
    const handler = function jailkeeperRoute(_req: Request, res: Response, next: NextFunction): void {
      const state = (res.locals as Locals)[kState];
      if (state !== undefined) state.jails = jails;
      next();
    };
    return Object.assign(handler, { [kRouteJails]: jails });
  };
  middleware.exempt = () => middleware.route(false);
  middleware.client = (req: Request) => stateOf(req)?.identity;
  middleware.account = async (req: Request, name: unknown) => {
    const state = stateOf(req);
    const res = req.res;
    if (state === undefined || res === undefined) return true;
    const admitted = await kit.account(writer, res, state.identity, name, {
      method: req.method,
      route: state.route,
      path: pathOf(req.originalUrl),
      caseInsensitive: state.caseInsensitive,
    });
    if (admitted === null) return false;
    state.account = admitted.account;
    if (state.closed && admitted.slots !== null) {
      settleLate(res, state, state.identity, admitted.slots);
      return false;
    }
    state.slots = mergeSlots(state.slots, admitted.slots);
    return true;
  };
  middleware.fail = (req: Request, failOptions: { jails?: string[] } = {}) => {
    const jails = failOptions.jails === undefined ? undefined : kit.failJails(failOptions.jails);
    const state = stateOf(req);
    if (state === undefined) return false;
    state.failed = mergeFailed(state.failed, jails);
    return true;
  };
  middleware.guard = (server: Server, guardOptions: JailkeeperGuardOptions = {}) =>
    kit.guard(server, {
      ...(guardOptions.upgrade === undefined ? {} : { upgrade: guardOptions.upgrade }),
      ...(guardOptions.connection === undefined ? {} : { connection: guardOptions.connection }),
      ...(trusts === undefined ? {} : { trust: appTrust(keeper, guardOptions.app ?? serverApp(server)) }),
    });
  return middleware;
}
