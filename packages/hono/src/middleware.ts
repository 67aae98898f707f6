import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Jailkeeper } from '@jailkeeper/core';
import {
  type AdapterKit,
  type ClientIdentity,
  checkKeys,
  createAdapterKit,
  mergeFailed,
  type RefusalInfo,
  type RefusalOptions,
  type RefusalWriter,
  type RouteConfig,
  type RouteJails,
  type Slots,
  type Targets,
} from '@jailkeeper/core/adapter';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';

export type { RouteConfig };

/** Options of {@link jailkeeper}: see the options table in the README. */
export interface JailkeeperHonoOptions extends RefusalOptions {
  /**
   * Renders refusals yourself: return the Response to send (`c.json(..., info.status)`). Not
   * called for `drop`. If it throws or returns nothing, the configured refusal is sent.
   * @default the configured response
   */
  onRefused?: (c: Context, info: RefusalInfo) => Response;
  /**
   * Requests jailkeeper leaves alone: not judged, not counted. Base it on what a client cannot
   * forge; it runs on every request.
   */
  skip?: (c: Context) => boolean;
}

/** `c.var.jailkeeper`: the request as jailkeeper sees it, once the middleware admitted it. */
export interface JailkeeperContext {
  /** The client jailkeeper resolved (`{ ip, key, viaProxy? }`), for the app's own logs. */
  readonly client: ClientIdentity;
  /**
   * Marks this request failed, whatever its status (GraphQL errors answered with 200, failures
   * only the app knows): counted in every jail that applies, or only in `jails`. Throws
   * JK_ERR_UNKNOWN_JAIL for a jail that is not configured.
   */
  fail(options?: { jails?: string[] }): boolean;
}

/** What the middleware adds to a Hono app's environment: `c.var.jailkeeper`. */
export interface JailkeeperEnv {
  Variables: { jailkeeper?: JailkeeperContext };
}

/** The middleware, with route-level helpers. */
export interface JailkeeperMiddleware extends MiddlewareHandler<JailkeeperEnv> {
  /** Route-level middleware: responses of this route never count (its 4xx are normal, like /ws). */
  exempt(): MiddlewareHandler;
  /** Route-level middleware: `false` counts nothing here; `{ jails: ['login'] }` counts only in those. */
  route(config: RouteConfig): MiddlewareHandler;
  /** The client resolved for this request; undefined when the middleware did not admit it. */
  client(c: Context): ClientIdentity | undefined;
  /** `c.var.jailkeeper.fail()`; false when the middleware did not admit the request. */
  fail(c: Context, options?: { jails?: string[] }): boolean;
  /**
   * Guards the server `serve()` returned: banned clients' upgrade (WebSocket) requests are
   * refused, and with `{ connection: true }` banned direct peers dropped before HTTP parsing.
   * @default { upgrade: true, connection: false }
   */
  guard(
    server: Server | Http2Server | Http2SecureServer,
    options?: { upgrade?: boolean; connection?: boolean },
  ): () => void;
}

const kRouteJails = Symbol('jailkeeper.routeJails');
const kState = Symbol('jailkeeper.state');
const NONE: Targets = Object.freeze([]);
type Bindings = { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
type Marked = Function & { [kRouteJails]?: RouteJails };

/** Per admitted request, in `c.var.jailkeeper`: its state and the app's handle on it. */
class RequestState implements JailkeeperContext {
  slots: Slots | null = null;
  failed: true | Set<string> | undefined = undefined;
  /** The status the app answered; undefined while its handler runs. */
  status: number | undefined = undefined;
  /** The response closed (the client left) while the handler was still running. */
  closed = false;
  constructor(
    readonly client: ClientIdentity,
    readonly route: string | null,
    readonly jails: RouteJails,
    readonly method: string,
    readonly incoming: IncomingMessage,
    readonly kit: AdapterKit,
  ) {}
  fail(options: { jails?: string[] } = {}): boolean {
    const jails = options.jails === undefined ? undefined : this.kit.failJails(options.jails);
    this.failed = mergeFailed(this.failed, jails);
    return true;
  }
}

type Outgoing = ServerResponse & { [kState]?: RequestState };

/**
 * Counts a response once it is written (or its client left), as the other adapters do on
 * `close`: built once per middleware, `this` is Node's response, so a request costs no closure.
 * A response that closes while the handler still runs is counted when the handler returns.
 */
function counter(kit: AdapterKit) {
  const count = (state: RequestState, status: number, abandoned: boolean): void => {
    if (kit.watches(status, state.slots, state.failed)) {
      kit.count({
        identity: state.client,
        method: state.method,
        route: state.route,
        caseInsensitive: false,
        url: state.incoming.url,
        status,
        userAgent: state.incoming.headers['user-agent'],
        jails: state.jails,
        slots: state.slots,
        abandoned,
        failed: state.failed,
      });
    }
    kit.closed();
  };
  function onClose(this: Outgoing): void {
    const state = this[kState];
    if (state === undefined) return;
    if (state.status === undefined) state.closed = true;
    else count(state, this.headersSent ? this.statusCode : state.status, !this.writableEnded);
  }
  return { count, onClose };
}

const writer: RefusalWriter<Context> = {
  drop: (c) => {
    (c.env as Bindings)?.incoming?.socket.destroy();
    c.res = RESPONSE_ALREADY_SENT;
  },
  status: (c, status) => c.status(status as never),
  header: (c, name, value) => c.header(name, value),
  send: (c, body) => {
    c.res = c.body(body);
  },
};

/**
 * The route Hono answers from: the first route matched after this middleware that a method
 * names (`app.get`) or whose handler takes no `next` (`app.all('/x', c => ...)`); null when only
 * middleware matched (Hono's not-found). A `jk.route()` on the way sets the config.
 */
function routeAfter(c: Context, from: number): { route: string | null; jails: RouteJails } {
  const routes = matchedRoutes(c);
  let jails: RouteJails;
  for (let i = from + 1; i < routes.length; i++) {
    const r = routes[i] as (typeof routes)[number];
    const own = (r.handler as Marked)[kRouteJails];
    if (own !== undefined) jails = own;
    if (r.method === 'ALL' && (r.handler.length >= 2 || own !== undefined)) continue;
    // The route's own middleware and handlers follow it under the same pattern.
    for (let j = i + 1; j < routes.length; j++) {
      const next = routes[j] as (typeof routes)[number];
      if (next.path !== r.path) break;
      jails = (next.handler as Marked)[kRouteJails] ?? jails;
    }
    return { route: r.path, jails };
  }
  return { route: null, jails };
}

/**
 * Creates the Hono middleware (Hono on Node, `@hono/node-server`). Mount it first, on every
 * path: a banned client is refused before any other middleware or handler runs.
 * @example
 * const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });
 * const jk = jailkeeper(keeper);
 * const app = new Hono();
 * app.use(jk);
 * app.get('/ws', jk.exempt(), handler);
 * jk.guard(serve({ fetch: app.fetch, port: 3000 }));
 */
export function jailkeeper(keeper: Jailkeeper, options: JailkeeperHonoOptions = {}): JailkeeperMiddleware {
  const onRefused = options.onRefused;
  const kit = createAdapterKit({
    keeper,
    keeperAt: 'jailkeeper(keeper)',
    options,
    optionsAt: 'jailkeeper options',
    ...(onRefused === undefined
      ? {}
      : {
          onRefused: (c: Context, info: RefusalInfo) => {
            const res = onRefused(c, info);
            if (!(res instanceof Response)) throw new TypeError('onRefused must return a Response');
            c.res = res;
          },
        }),
  });
  const skip = options.skip;

  const { count, onClose } = counter(kit);

  const middleware = async function jailkeeperMiddleware(c: Context, next: () => Promise<void>) {
    const incoming = (c.env as Bindings)?.incoming;
    if (incoming?.socket === undefined) {
      keeper.warn(
        'JK_WRN_NO_PEER_ADDRESS',
        'A request reached the jailkeeper Hono middleware without a socket (not served by @hono/node-server): requests like it are neither judged nor counted.',
      );
      return next();
    }
    const identity = keeper.resolve(incoming.socket.remoteAddress, incoming.headers, c);
    if (identity === undefined || skip?.(c) === true) return next();
    // A failure of this client still being recorded (Redis): judge the request after it.
    const settling = kit.settling(identity);
    if (settling !== undefined) await settling;
    const { route, jails } = routeAfter(c, c.req.routeIndex);
    const method = c.req.method;
    const verdict = keeper.check(
      identity,
      kit.jailScope ? { method, route, path: incoming.url ?? c.req.path } : undefined,
    );
    if (verdict.banned) return kit.refuse(writer, c, verdict, identity);
    const state = new RequestState(identity, route, jails, method, incoming, kit);
    const admission = kit.admission(
      identity,
      route === null ? NONE : kit.targets(method, route, false, jails),
    );
    if (admission !== undefined) {
      const admitted = await admission;
      if (!admitted.admitted) return kit.refuse(writer, c, admitted.verdict, identity);
      state.slots = admitted.slots;
    }
    keeper.trackConnection(incoming.socket, identity);
    c.set('jailkeeper', state);
    const outgoing = (c.env as Bindings)?.outgoing as Outgoing;
    outgoing[kState] = state;
    kit.opened();
    outgoing.on('close', onClose);
    try {
      await next();
    } finally {
      // A throw that is not an Error passes Hono's error handler: the server answers 500.
      state.status = c.finalized ? c.res.status : 500;
      if (state.closed) count(state, state.status, true);
    }
  } as JailkeeperMiddleware;

  middleware.route = (config: RouteConfig): MiddlewareHandler => {
    const handler: MiddlewareHandler = (_c, next) => next();
    return Object.assign(handler, { [kRouteJails]: kit.compileRoute(config) });
  };
  middleware.exempt = () => middleware.route(false);
  middleware.client = (c: Context) => (c.get('jailkeeper') as RequestState | undefined)?.client;
  middleware.fail = (c: Context, failOptions?: { jails?: string[] }) => {
    const state = c.get('jailkeeper') as RequestState | undefined;
    if (state !== undefined) return state.fail(failOptions);
    if (failOptions?.jails !== undefined) kit.failJails(failOptions.jails);
    return false;
  };
  middleware.guard = (server, guardOptions = {}) => {
    const g = checkKeys('jk.guard() options', guardOptions, { upgrade: true, connection: true });
    return kit.guard(server as Server, g as { upgrade?: boolean; connection?: boolean });
  };
  return middleware;
}
