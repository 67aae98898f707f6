import type { ClientIdentity, Jailkeeper } from '@jailkeeper/core';
import {
  type AdapterKit,
  checkKeys,
  createAdapterKit,
  type RefusalOptions,
  type RefusalWriter,
  type RouteConfig,
  type RouteJails,
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

const OWN_KEYS = { keeper: true, guard: true } as const;
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
  const kit = createAdapterKit({
    keeper: (options as { keeper?: unknown } | undefined)?.keeper,
    keeperAt: 'jailkeeper plugin options.keeper',
    options,
    optionsAt: 'jailkeeper plugin options',
    extraKeys: OWN_KEYS,
  });
  const keeper = kit.keeper;

  if (!fastify.hasDecorator('jailkeeper')) fastify.decorate('jailkeeper', keeper);
  // A declared request property keeps the request's shape fixed: Fastify builds it in.
  if (!fastify.hasRequestDecorator(kIdentity as unknown as string)) {
    fastify.decorateRequest(kIdentity as unknown as string, null);
  }
  const onClose = countOnClose(kit);

  // Per-route settings are validated and compiled once, when the route is declared.
  fastify.addHook('onRoute', (route) => {
    const config = route.config?.jailkeeper;
    if (config === undefined) return;
    route.config = { ...route.config, [kRouteJails]: kit.compileRoute(config) } as typeof route.config;
  });

  // onRequest runs after routing and before the body is read: refuse here.
  const onRequest: onRequestHookHandler = (request, reply, next) => {
    const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
    if (identity === undefined) next();
    // A failure of this client still being recorded (Redis): judge the request after it.
    else kit.admit(identity, decide, request, reply, next);
  };

  const decide = (
    request: FastifyRequest,
    reply: FastifyReply,
    next: (error?: Error) => void,
    identity: ClientIdentity,
  ): void => {
    const verdict = keeper.check(
      identity,
      kit.jailScope
        ? { method: request.method, route: request.routeOptions.url ?? null, path: request.url }
        : undefined,
    );
    if (verdict.banned) {
      kit.refuse(writer, reply, verdict, identity);
      return;
    }
    keeper.trackConnection(request.raw.socket, identity);
    // One listener on the raw response counts it when it is done or aborted: no onResponse or
    // onRequestAbort hook, which would each add Fastify's per-request hook machinery.
    (request as JkRequest)[kIdentity] = identity;
    // One property on the raw response: more would reshape Node's objects for every access after.
    const raw = reply.raw as JkResponse;
    raw[kRequest] = request;
    kit.opened();
    raw.on('close', onClose);
    next();
  };
  fastify.addHook('onRequest', onRequest);

  const guard = kit.input.guard === undefined ? {} : kit.input.guard;
  if (guard !== false) {
    const g = checkKeys('jailkeeper plugin options.guard', guard, { upgrade: true, connection: true });
    const unguard = kit.guard(fastify.server, g as { upgrade?: boolean; connection?: boolean });
    fastify.addHook('onClose', (_instance, next) => {
      unguard();
      next();
    });
  }
}

/**
 * The listener that counts a finished (or aborted) response, built once per plugin (it closes over
 * the kit): `this` is the raw response, so a request costs no new closure. A refused request
 * never gets here.
 */
function countOnClose(kit: AdapterKit): (this: JkResponse) => void {
  return function onClose(this: JkResponse): void {
    const request = this[kRequest];
    if (request === undefined) return;
    const identity = (request as JkRequest)[kIdentity];
    if (identity === null) return;
    // A clean response: nothing to build (request.routeOptions allocates on every read).
    if (kit.watches(this.statusCode)) {
      const routeOptions = request.routeOptions;
      const jails = (routeOptions.config as JkConfig | undefined)?.[kRouteJails];
      const ua = request.headers['user-agent'];
      kit.count(identity, request.method, routeOptions.url ?? null, request.url, this.statusCode, ua, jails);
    }
    kit.closed();
  };
}

/**
 * The Fastify plugin: `await app.register(jailkeeperPlugin, { keeper })`.
 * @example
 * const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });
 * await app.register(jailkeeperPlugin, { keeper });
 * app.get('/ws', { config: { jailkeeper: false } }, handler);
 */
export const jailkeeperPlugin = fp(plugin, { name: '@jailkeeper/fastify', fastify: '4.x || 5.x' });
