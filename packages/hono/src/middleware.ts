import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Jailkeeper } from '@jailkeeper/core';
import {
  type Attempt,
  type ClientIdentity,
  checkKeys,
  createAdapterKit,
  JailkeeperConfigError,
  type RefusalInfo,
  type RefusalWriter,
  type RouteConfig,
  type RouteJails,
  type Targets,
} from '@jailkeeper/core/adapter';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { JailkeeperContext, JailkeeperHonoOptions, JailkeeperMiddleware } from './types.js';

const kRouteJails = Symbol('jailkeeper.routeJails');
const NONE: Targets = Object.freeze([]);
type Bindings = { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
type Marked = Function & { [kRouteJails]?: RouteJails };

/** `c.var.jailkeeper`: the app's handle on the request's attempt. */
class Handle implements JailkeeperContext {
  readonly #attempt: Attempt<Context>;
  readonly #failJails: (jails: unknown) => ReadonlySet<string>;
  constructor(attempt: Attempt<Context>, failJails: (jails: unknown) => ReadonlySet<string>) {
    this.#attempt = attempt;
    this.#failJails = failJails;
  }
  get client(): ClientIdentity {
    return this.#attempt.identity;
  }
  fail(options: { jails?: string[] } = {}): boolean {
    return this.#attempt.fail(options.jails === undefined ? undefined : this.#failJails(options.jails));
  }
  account(name: unknown): Promise<boolean> {
    return this.#attempt.nameAccount(name);
  }
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
    writer,
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

  const failJails = (jails: unknown) => kit.failJails(jails);

  const middleware = async function jailkeeperMiddleware(c: Context, next: () => Promise<void>) {
    const incoming = (c.env as Bindings)?.incoming;
    const outgoing = (c.env as Bindings)?.outgoing;
    if (incoming?.socket === undefined || outgoing === undefined) {
      keeper.warn(
        'JK_WRN_NO_PEER_ADDRESS',
        'A request reached the jailkeeper Hono middleware without a socket (not served by @hono/node-server): requests like it are neither judged nor counted.',
      );
      return next();
    }
    if (c.get('jailkeeper') !== undefined) {
      // Twice on one path: each copy would take its own slot for every attempt.
      throw new JailkeeperConfigError(
        'JK_ERR_REGISTERED_TWICE',
        'jailkeeper middleware',
        'The jailkeeper middleware runs twice for this request: every attempt would take two slots, so logins would wait and be refused (429) instead of banned. Use it once, first, on every path.',
      );
    }
    const identity = keeper.resolve(incoming.socket.remoteAddress, incoming.headers, c);
    if (identity === undefined || skip?.(c) === true) return next();
    // The store still loading, or a failure of this client still being recorded (Redis).
    const ready = kit.ready(identity);
    if (ready !== undefined) await ready;
    const { route, jails } = routeAfter(c, c.req.routeIndex);
    const method = c.req.method;
    const attempt = kit.begin(
      identity,
      c,
      outgoing,
      method,
      incoming.url ?? c.req.path,
      incoming.headers['user-agent'],
    );
    attempt.route = route;
    attempt.jails = jails;
    if (attempt.refused()) return;
    const admitted = attempt.admit(route === null ? NONE : kit.targets(method, route, false, jails), true);
    if (admitted !== true && !(await admitted)) {
      // Refused (the refusal is in c.res), or its client left while it waited: nothing to send.
      if (!c.finalized) c.res = RESPONSE_ALREADY_SENT;
      return;
    }
    // @hono/node-server writes the response after this middleware returns: a client that leaves
    // while the handler runs is counted with the handler's status, when it returns.
    attempt.countsAfterHandler = true;
    c.set('jailkeeper', new Handle(attempt, failJails));
    attempt.open();
    try {
      await next();
    } finally {
      // A throw that is not an Error passes Hono's error handler: the server answers 500.
      attempt.handled(c.finalized ? c.res.status : 500, c.finalized && c.res === RESPONSE_ALREADY_SENT);
    }
  } as JailkeeperMiddleware;

  middleware.route = (config: RouteConfig): MiddlewareHandler => {
    const handler: MiddlewareHandler = (_c, next) => next();
    return Object.assign(handler, { [kRouteJails]: kit.compileRoute(config) });
  };
  middleware.exempt = () => middleware.route(false);
  middleware.client = (c: Context) => (c.get('jailkeeper') as Handle | undefined)?.client;
  middleware.fail = (c: Context, failOptions?: { jails?: string[] }) => {
    const handle = c.get('jailkeeper') as Handle | undefined;
    if (handle !== undefined) return handle.fail(failOptions);
    if (failOptions?.jails !== undefined) kit.failJails(failOptions.jails);
    return false;
  };
  middleware.account = (c: Context, name: unknown) =>
    (c.get('jailkeeper') as Handle | undefined)?.account(name) ?? Promise.resolve(true);
  middleware.guard = (server, guardOptions = {}) => {
    const g = checkKeys('jk.guard() options', guardOptions, { upgrade: true, connection: true });
    return kit.guard(server as Server, g as { upgrade?: boolean; connection?: boolean });
  };
  return middleware;
}
