import {
  type Attempt,
  type ClientIdentity,
  checkKeys,
  createAdapterKit,
  JailkeeperConfigError,
  type RefusalInfo,
  type RefusalWriter,
  type RouteJails,
  type Targets,
} from '@jailkeeper/core/adapter';
import type {
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import type { JailkeeperFastifyOptions, JailkeeperRequest } from './types.js';

/** On a route's config: the route compiled once (its pattern, its jailkeeper config). */
const kRoute = Symbol('jailkeeper.route');
/** The request's attempt (a request decoration, declared so Fastify builds it into the shape). */
const kAttempt = Symbol('jailkeeper.attempt');
/** On the Fastify instance once the plugin is registered: a second registration is refused. */
const kRegistered = Symbol('jailkeeper.registered');

/** A route as jailkeeper sees it, compiled when declared (or at its first request). */
interface CompiledRoute {
  /** The pattern the router matched, with its prefix; null for the 404 handler. */
  readonly url: string | null;
  readonly jails: RouteJails;
}
type JkRequest = FastifyRequest & { [kAttempt]: Attempt<FastifyReply> | null };
type RouteConfigObject = Record<PropertyKey, unknown> & { [kRoute]?: CompiledRoute };
const NOT_A_ROUTE: CompiledRoute = Object.freeze({ url: null, jails: undefined });
const NO_TARGETS: Targets = Object.freeze([]);

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
    writer,
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

  if (fastify.hasDecorator(kRegistered as unknown as string)) {
    throw new JailkeeperConfigError(
      'JK_ERR_REGISTERED_TWICE',
      'jailkeeper plugin',
      'The jailkeeper plugin is registered twice on this Fastify app: every attempt would take two slots, so logins would wait and be refused (429) instead of banned. Register it once, on the root app.',
    );
  }
  fastify.decorate(kRegistered as unknown as string, true);
  if (!fastify.hasDecorator('jailkeeper')) fastify.decorate('jailkeeper', keeper);
  if (!fastify.hasRequestDecorator(kAttempt as unknown as string))
    fastify.decorateRequest(kAttempt as unknown as string, null);
  // request.jailkeeper / reply.jailkeeper: built only when read.
  const handle = (request: JkRequest): JailkeeperRequest => ({
    account: async (name: unknown) => {
      const attempt = request[kAttempt];
      return attempt === null ? true : attempt.nameAccount(name);
    },
    get client() {
      return request[kAttempt]?.identity;
    },
    fail(failOptions: { jails?: string[] } = {}) {
      const jails = failOptions.jails === undefined ? undefined : kit.failJails(failOptions.jails);
      return request[kAttempt]?.fail(jails) ?? false;
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
        return handle(this.request as JkRequest);
      },
    });
  }

  const compile = (url: string | undefined, config: unknown): CompiledRoute =>
    Object.freeze({ url: url ?? null, jails: kit.compileRoute(config) });
  // Routes declared after the plugin: compiled (and their config validated) when declared.
  // Declared routes, for the startup check of the jails' rules (`'/ws'` beside `'/ws/:room'`).
  const declared: string[] = [];
  fastify.addHook('onReady', (ready) => {
    keeper.checkRoutes(declared, caseInsensitive);
    ready();
  });
  fastify.addHook('onRoute', (route) => {
    declared.push(route.url);
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
    const attempt = kit.begin(
      identity,
      reply,
      reply.raw,
      request.method,
      request.url,
      request.headers['user-agent'],
      caseInsensitive,
    );
    attempt.route = route.url;
    attempt.jails = route.jails;
    if (attempt.refused()) return;
    const targets =
      route.url === null ? NO_TARGETS : kit.targets(request.method, route.url, caseInsensitive, route.jails);
    const admitted = attempt.admit(targets, true);
    if (admitted === true) run(request as JkRequest, attempt, next);
    else admitted.then((go) => go && run(request as JkRequest, attempt, next));
  };
  const run = (request: JkRequest, attempt: Attempt<FastifyReply>, next: () => void): void => {
    request[kAttempt] = attempt;
    attempt.open();
    next();
  };

  // onRequest runs after routing and before the body is read: refuse and admit here.
  const onRequest: onRequestHookHandler = (request, reply, next) => {
    const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
    if (identity === undefined || skip?.(request) === true) {
      next();
      return;
    }
    // The store still loading, or a failure of this client still being recorded (Redis).
    const ready = kit.ready(identity);
    if (ready === undefined) decide(request, reply, next, identity);
    else ready.then(() => decide(request, reply, next, identity));
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
