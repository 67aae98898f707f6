import type { ClientIdentity, Jailkeeper } from '@jailkeeper/core';
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
import type {
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';

/** Per-route setting, in `config.jailkeeper`: `false` counts nothing; `{ jails }` counts only in those. */
export type JailkeeperRouteConfig = RouteConfig;

/** Options of the plugin. */
export interface JailkeeperFastifyOptions extends RefusalOptions {
  /** The keeper from createJailkeeper(). */
  keeper: Jailkeeper;
  /**
   * Guard the server below Fastify: `upgrade` refuses banned clients' upgrade requests that a
   * WebSocket library handles outside the routes; `connection` drops banned direct peers before
   * HTTP parsing. @default { upgrade: true, connection: false }
   */
  guard?: { upgrade?: boolean; connection?: boolean } | false;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** jailkeeper on this route: `false` counts nothing; `{ jails: ['login'] }` counts only in those jails. */
    jailkeeper?: JailkeeperRouteConfig;
  }
  interface FastifyInstance {
    jailkeeper: Jailkeeper;
  }
}

const OPTION_KEYS = { keeper: true, block: true, response: true, retryAfter: true, guard: true } as const;
const kIdentity = Symbol('jailkeeper.identity');
const kRouteJails = Symbol('jailkeeper.routeJails');
const kRequest = Symbol('jailkeeper.request');

type JkResponse = FastifyReply['raw'] & { [kRequest]?: FastifyRequest };
type JkRequest = FastifyRequest & { [kIdentity]: ClientIdentity | null };
type JkConfig = { [kRouteJails]?: RouteJails };

const writer: RefusalWriter<FastifyReply> = {
  drop: (reply) => {
    reply.hijack();
    reply.raw.socket?.destroy();
  },
  status: (reply, status) => reply.code(status),
  header: (reply, name, value) => reply.header(name, value),
  send: (reply, body) => reply.send(body),
};

// A callback plugin must hand errors to done(): thrown, avvio would raise them as an uncaught
// exception instead of rejecting register(), and a bad option would crash the app.
const plugin: FastifyPluginCallback<JailkeeperFastifyOptions> = (fastify, options, done) => {
  try {
    setup(fastify, options);
  } catch (error) {
    done(error as Error);
    return;
  }
  done();
};

function setup(fastify: FastifyInstance, options: JailkeeperFastifyOptions): void {
  const input = checkKeys('jailkeeper plugin options', options, OPTION_KEYS);
  const keeper = requireKeeper(input.keeper, 'jailkeeper plugin options.keeper');
  const refusal = resolveRefusal('', input);
  const jailScope = keeper.hasJailScope;

  if (!fastify.hasDecorator('jailkeeper')) fastify.decorate('jailkeeper', keeper);
  // A declared request property keeps the request's shape fixed: Fastify builds it in.
  if (!fastify.hasRequestDecorator(kIdentity as unknown as string)) {
    fastify.decorateRequest(kIdentity as unknown as string, null);
  }
  const onClose = countOnClose(keeper);

  // Per-route settings are validated and compiled once, when the route is declared.
  fastify.addHook('onRoute', (route) => {
    const config = route.config?.jailkeeper;
    if (config === undefined) return;
    const jails = compileRouteConfig(keeper.options.jailsByName.keys(), 'jailkeeper route config', config);
    route.config = { ...route.config, [kRouteJails]: jails } as typeof route.config;
  });

  // onRequest runs after routing and before the body is read: refuse here.
  const onRequest: onRequestHookHandler = (request, reply, next) => {
    const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
    if (identity === undefined) {
      next();
      return;
    }
    // A failure of this client still being recorded (Redis): judge the request after it.
    afterSettling(keeper, identity, decide, request, reply, next);
  };

  const decide = (
    request: FastifyRequest,
    reply: FastifyReply,
    next: (error?: Error) => void,
    identity: ClientIdentity,
  ): void => {
    const verdict = keeper.check(
      identity,
      jailScope
        ? { method: request.method, route: request.routeOptions.url ?? null, path: request.url }
        : undefined,
    );
    if (verdict.banned) {
      writeRefusal(writer, reply, refusal, verdict, identity, keeper.clock.now());
      return;
    }
    keeper.trackConnection(request.raw.socket, identity);
    // One listener on the raw response counts it when it is done or aborted: no onResponse or
    // onRequestAbort hook, which would each add Fastify's per-request hook machinery.
    (request as JkRequest)[kIdentity] = identity;
    // One property on the raw response: more would reshape Node's objects for every access after.
    const raw = reply.raw as JkResponse;
    raw[kRequest] = request;
    responseOpened(keeper);
    raw.on('close', onClose);
    next();
  };
  fastify.addHook('onRequest', onRequest);

  const guard = input.guard === undefined ? {} : input.guard;
  if (guard !== false) {
    const g = checkKeys('jailkeeper plugin options.guard', guard, { upgrade: true, connection: true });
    const unguard = keeper.guard(fastify.server, {
      upgrade: (g.upgrade as boolean | undefined) ?? true,
      connection: (g.connection as boolean | undefined) ?? false,
      block: refusal.drop ? 'drop' : 'forbid',
    });
    fastify.addHook('onClose', (_instance, next) => {
      unguard();
      next();
    });
  }
}

/**
 * The listener that counts a finished (or aborted) response, built once per plugin (it closes over
 * the keeper): `this` is the raw response, so a request costs no new closure. A refused request
 * never gets here.
 */
function countOnClose(keeper: Jailkeeper): (this: JkResponse) => void {
  return function onClose(this: JkResponse): void {
    const request = this[kRequest];
    if (request === undefined) return;
    const identity = (request as JkRequest)[kIdentity];
    if (identity === null) return;
    // A clean response: nothing to build (request.routeOptions allocates on every read).
    if (keeper.watchesStatus(this.statusCode)) count(request, identity, this.statusCode);
    responseCounted(keeper);
  };

  function count(request: FastifyRequest, identity: ClientIdentity, status: number): void {
    const routeOptions = request.routeOptions;
    const jails = (routeOptions.config as JkConfig | undefined)?.[kRouteJails];
    countResponse(
      keeper,
      identity,
      request.method,
      routeOptions.url ?? null,
      request.url,
      status,
      request.headers['user-agent'],
      jails,
    );
  }
}

/**
 * The Fastify plugin: `await app.register(jailkeeperPlugin, { keeper })`.
 * @example
 * const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });
 * await app.register(jailkeeperPlugin, { keeper });
 * app.get('/ws', { config: { jailkeeper: false } }, handler);
 */
export const jailkeeperPlugin = fp(plugin, { name: '@jailkeeper/fastify', fastify: '4.x || 5.x' });
