import type { Jailkeeper } from '@jailkeeper/core';
import {
  type AdapterOptions,
  type Banned,
  type ClientIdentity,
  checkKeys,
  createAdapterKit,
  mergeFailed,
  mergeSlots,
  onResponseClose,
  type RefusalInfo,
  type RefusalWriter,
  type RouteConfig,
  type Slots,
} from '@jailkeeper/core/adapter';
import type {
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';

import {
  type CompiledRoute,
  countOnClose,
  factsOf,
  type JkRequest,
  type JkResponse,
  kAccount,
  kFailed,
  kIdentity,
  kReply,
  kRequest,
  kRoute,
  kRouteOf,
  kSlots,
  NO_TARGETS,
  NOT_A_ROUTE,
  type RouteConfigObject,
} from './request-state.js';

/** Per-route setting, in `config.jailkeeper`: `false` counts nothing; `{ jails }` counts only in those. */
export type JailkeeperRouteConfig = RouteConfig;

/** Options of the plugin: see the options table in the README. */
export interface JailkeeperFastifyOptions extends AdapterOptions<FastifyRequest, FastifyReply> {
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
  interface FastifyRequest {
    /** jailkeeper's view of this request: its client, and `fail()`. */
    jailkeeper: JailkeeperRequest;
  }
  interface FastifyReply {
    /** jailkeeper's view of the request this reply answers: its client, and `fail()`. */
    jailkeeper: JailkeeperRequest;
  }
}

/** `request.jailkeeper` and `reply.jailkeeper`. */
export interface JailkeeperRequest {
  /**
   * The client jailkeeper resolved for this request (`{ ip, key, viaProxy? }`), for the app's own
   * logs; undefined when the plugin did not admit it (skipped, or no peer address).
   */
  readonly client: ClientIdentity | undefined;
  /**
   * Marks this request failed, whatever its status: GraphQL and JSON-RPC answer 200 with errors,
   * and some failures only the app knows. It counts when the response closes, in every jail whose
   * methods, paths and user agents apply, or only in `jails`. Returns false when the request was
   * not admitted. Throws JK_ERR_UNKNOWN_JAIL for a jail that is not configured.
   */
  fail(options?: { jails?: string[] }): boolean;
  /**
   * Names the account this request tries (a login's user name), once the app knows it (in the
   * handler or a preHandler, after the body is parsed): the jails keyed by account judge it now.
   * Resolves true to go on; false when jailkeeper refused the request (it has answered: return
   * the reply). See docs/accounts.md.
   */
  account(name: unknown): Promise<boolean>;
}

const OWN_KEYS = { keeper: true, guard: true } as const;

const writer: RefusalWriter<FastifyReply> = {
  drop: (reply) => {
    reply.hijack();
    reply.raw.socket?.destroy();
  },
  status: (reply, status) => reply.code(status),
  header: (reply, name, value) => reply.header(name, value),
  send: (reply, body) => reply.send(body),
};

/**
 * Fastify 4 and 5 keep the matched route's context on the request under a symbol described
 * 'fastify.context'. Reading its config is one property read, where `request.routeOptions` builds a
 * new object on every read. The symbol is found once per plugin (each copy of Fastify has its
 * own); without it, routeOptions is read.
 */
function routeConfigReader(): (request: FastifyRequest) => RouteConfigObject | undefined {
  let kContext: symbol | null | undefined;
  return (request) => {
    if (kContext === undefined) {
      kContext =
        Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ?? null;
    }
    if (kContext !== null) {
      return (request as unknown as Record<symbol, { config?: RouteConfigObject } | undefined>)[kContext]
        ?.config;
    }
    return request.routeOptions.config as unknown as RouteConfigObject | undefined;
  };
}

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
    ...(options?.onRefused === undefined
      ? {}
      : {
          onRefused: (reply: FastifyReply, info: RefusalInfo) =>
            options.onRefused?.(reply.request, reply, info),
        }),
  });
  const skip = options.skip;
  const keeper = kit.keeper;
  // Log through the app's own logger when the keeper was given none and Fastify's logging is on
  // (without it, fastify.log is a stand-in that drops everything: warnings would vanish).
  if (typeof fastify.log.level === 'string' && fastify.log.level !== 'silent')
    keeper.adoptLogger(fastify.log);
  // find-my-way matches case-insensitively when caseSensitive is false: rules then ignore case.
  // Fastify 5.x takes it in routerOptions too, which win (initialConfig keeps the top level's).
  const config = fastify.initialConfig as {
    caseSensitive?: boolean;
    routerOptions?: { caseSensitive?: boolean };
  };
  const caseInsensitive = (config.routerOptions?.caseSensitive ?? config.caseSensitive) === false;

  if (!fastify.hasDecorator('jailkeeper')) fastify.decorate('jailkeeper', keeper);
  for (const key of [kIdentity, kSlots, kRouteOf, kFailed, kAccount, kReply]) {
    if (!fastify.hasRequestDecorator(key as unknown as string))
      fastify.decorateRequest(key as unknown as string, null);
  }
  // request.jailkeeper / reply.jailkeeper: built only when read.
  const handle = (request: JkRequest, reply?: FastifyReply): JailkeeperRequest => ({
    async account(name: unknown) {
      const identity = request[kIdentity];
      if (identity === null) return true;
      const route = request[kRouteOf] ?? NOT_A_ROUTE;
      const target = reply ?? request[kReply];
      if (target === null) return true;
      const admitted = await kit.account(writer, target, identity, name, {
        method: request.method,
        route: route.url,
        path: request.url,
        caseInsensitive,
      });
      if (admitted === null) return false;
      request[kAccount] = admitted.account ?? null;
      if (admitted.slots !== null && (target.raw.destroyed || target.raw.writableFinished)) {
        // The client left while the account was judged: its response was counted without these
        // slots, so they settle now, as an abandoned attempt.
        kit.count(
          factsOf(
            request,
            identity,
            caseInsensitive,
            target.raw.statusCode,
            admitted.slots,
            true,
            admitted.account,
          ),
        );
        return false;
      }
      request[kSlots] = mergeSlots(request[kSlots], admitted.slots);
      return true;
    },
    get client() {
      return request[kIdentity] ?? undefined;
    },
    fail(failOptions: { jails?: string[] } = {}) {
      const jails = failOptions.jails === undefined ? undefined : kit.failJails(failOptions.jails);
      if (request[kIdentity] === null) return false;
      request[kFailed] = mergeFailed(request[kFailed] ?? undefined, jails);
      return true;
    },
  });
  if (!fastify.hasRequestDecorator('jailkeeper')) {
    fastify.decorateRequest('jailkeeper', {
      getter(this: FastifyRequest) {
        return handle(this as JkRequest);
      },
    });
  }
  if (!fastify.hasReplyDecorator('jailkeeper')) {
    fastify.decorateReply('jailkeeper', {
      getter(this: FastifyReply) {
        return handle(this.request as JkRequest, this);
      },
    });
  }

  const compile = (url: string | undefined, config: unknown): CompiledRoute =>
    Object.freeze({ url: url ?? null, jails: kit.compileRoute(config) });
  // Routes declared after the plugin: compiled (and their config validated) when declared.
  fastify.addHook('onRoute', (route) => {
    route.config = {
      ...route.config,
      [kRoute]: compile(route.url, route.config?.jailkeeper),
    } as typeof route.config;
  });
  // A route declared before the plugin finished registering never passed onRoute: it is compiled
  // at its first request, so its config is honoured whatever the order (a mistake in it then
  // fails that request with the coded error, and a warning says how to avoid the surprise).
  const late = new WeakMap<object, CompiledRoute>();
  const routeConfigOf = routeConfigReader();
  const routeOf = (request: FastifyRequest): CompiledRoute => {
    const config = routeConfigOf(request);
    if (config === undefined) return NOT_A_ROUTE;
    const compiled = config[kRoute] ?? late.get(config);
    if (compiled !== undefined) return compiled;
    const url = typeof config.url === 'string' ? config.url : undefined;
    if (url !== undefined && config.jailkeeper !== undefined) {
      keeper.warn(
        'JK_WRN_ROUTE_BEFORE_PLUGIN',
        `The route ${url} was declared before the jailkeeper plugin finished registering; its config.jailkeeper is applied from its first request. Await app.register(jailkeeperPlugin, ...) before declaring routes, so that mistakes fail at startup.`,
      );
    }
    const made = compile(url, config.jailkeeper);
    late.set(config, made);
    return made;
  };
  const onClose = countOnClose(kit, caseInsensitive);

  const go = (
    request: FastifyRequest,
    reply: FastifyReply,
    next: (error?: Error) => void,
    identity: ClientIdentity,
    slots: Slots | null,
  ): void => {
    keeper.trackConnection(request.raw.socket, identity);
    // One listener on the raw response counts it when it is done or aborted: no onResponse or
    // onRequestAbort hook, which would each add Fastify's per-request hook machinery.
    (request as JkRequest)[kIdentity] = identity;
    (request as JkRequest)[kSlots] = slots;
    (request as JkRequest)[kReply] = reply;
    // One property on the raw response: more would reshape Node's objects for every access after.
    const raw = reply.raw as JkResponse;
    raw[kRequest] = request;
    kit.opened();
    // Also when the client left while the attempt waited, or the response is queued behind a
    // pipelined one: Node emits no 'close' then, and the attempt's slots would never settle.
    onResponseClose(raw, onClose);
    next();
  };
  const stop = (
    _request: FastifyRequest,
    reply: FastifyReply,
    _next: unknown,
    identity: ClientIdentity,
    verdict: Banned | null,
  ): void => kit.refuse(writer, reply, verdict, identity);

  const decide = (
    request: FastifyRequest,
    reply: FastifyReply,
    next: (error?: Error) => void,
    identity: ClientIdentity,
  ): void => {
    let route: CompiledRoute;
    try {
      route = routeOf(request);
    } catch (error) {
      next(error as Error);
      return;
    }
    (request as JkRequest)[kRouteOf] = route;
    const verdict = keeper.check(
      identity,
      kit.jailScope
        ? { method: request.method, route: route.url, path: request.url, caseInsensitive }
        : undefined,
    );
    if (verdict.banned) {
      kit.refuse(writer, reply, verdict, identity);
      return;
    }
    const targets =
      route.url === null ? NO_TARGETS : kit.targets(request.method, route.url, caseInsensitive, route.jails);
    kit.admitThen(identity, targets, go, stop, request, reply, next);
  };

  // onRequest runs after routing and before the body is read: refuse and admit here.
  const onRequest: onRequestHookHandler = (request, reply, next) => {
    const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
    if (identity === undefined || skip?.(request) === true) next();
    // A failure of this client still being recorded (Redis): judge the request after it.
    else kit.admit(identity, decide, request, reply, next);
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
 * The Fastify plugin: `await app.register(jailkeeperPlugin, { keeper })`.
 * @example
 * const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });
 * await app.register(jailkeeperPlugin, { keeper });
 * app.get('/ws', { config: { jailkeeper: false } }, handler);
 */
export const jailkeeperPlugin = fp(plugin, { name: '@jailkeeper/fastify', fastify: '4.x || 5.x' });
