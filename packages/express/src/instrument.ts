import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type AdapterKit,
  Attempt,
  canonicalRoute,
  notHeld,
  type RouteJails,
  type Targets,
} from '@jailkeeper/core/adapter';
import type { Response as ExpressResponse } from 'express';
import {
  chosen,
  joinPatterns,
  type Layer,
  type Patterns,
  patternsOf,
  type Router,
} from './route-identity.js';

/**
 * The attempt of a request the middleware admitted, kept in `res.locals` (a null-prototype object
 * Express makes): the toolkit's attempt, plus where the request is in the app's router tree. It is
 * also the request as `keeper.check()` reads it, so judging a jail-scope ban at a route builds
 * nothing.
 */
export class ExpressAttempt extends Attempt<ExpressResponse> {
  /** The router of the app whose middleware admitted the request: its routes have no prefix. */
  root: Router | undefined = undefined;
  /**
   * The full pattern each router was entered by in this request; under `PENDING_APP`, the one of
   * the sub-app being entered, until its own middleware claims it for the sub-app's router.
   */
  mounts: Map<Router | symbol, string> | null = null;
  /**
   * Dispatched again through its app (`app.handle(req, res, next)`): the next route it enters
   * without a config of its own counts in every jail again, whatever config the route that
   * dispatched it had (an exempt route dispatching to the login); one it only passes through
   * gives that config back.
   */
  redispatched = false;
}

export const kState = Symbol('jailkeeper.state');
/** On the jailkeeper middleware itself: its layers are not wrapped, and are counted (see `mountsOf`). */
export const kMiddleware = Symbol('jailkeeper.middleware');

/**
 * The request's state, when the middleware admitted it: where the middleware put it in
 * `res.locals` when it is this response's; else, when an app replaced `res.locals` after the
 * middleware (or shares one object between requests), found from the response itself (its
 * attempt's close listener), which is slower. Without that, a route behind such an app took no
 * slot, and 10 parallel guesses at maxRetry 3 all ran. With `socket` (the request's), the
 * response is asked only when an attempt is open on that socket: a new request's costs no read of
 * its response beyond `res.locals`.
 */
export function stateOf(res: Res, socket?: Duplex): RequestState | undefined {
  let state: unknown;
  try {
    state = res.locals?.[kState];
  } catch {
    // a Proxy that throws for names it lacks: the state is found from the response below
  }
  if (state instanceof ExpressAttempt && (state.target as unknown) === res) return state;
  // `socket` (the request's, at the middleware): no attempt open on it, none to find; unless its
  // client left (the attempt closed) while the app went on dispatching the request (a second
  // mount, or app.handle, after a slow middleware): that attempt is this request's still.
  if (socket !== undefined && !socket.destroyed && !Attempt.openOn(socket)) return undefined;
  const found = Attempt.of(res as unknown as ServerResponse);
  return found instanceof ExpressAttempt ? found : undefined;
}
/** On a `jk.route()` middleware: its compiled config, read when the route it stands in is wrapped. */
export const kRouteJails = Symbol('jailkeeper.routeJails');
const kWrapped = Symbol('jailkeeper.wrapped');
/** router 2.3+ (Express 5) keeps the pattern it matched on the request under this symbol's description. */
const MATCHED_ROUTE = 'router.tracing.matchedRoute';
const PENDING_APP = Symbol('jailkeeper.pendingApp');

type Req = {
  method: string;
  baseUrl: string;
  originalUrl: string;
  app: { _router?: Router; router?: Router; get(setting: string): unknown };
};
type Res = { locals: Record<symbol, ExpressAttempt | undefined> };
type RequestState = ExpressAttempt;
type Next = (error?: unknown) => void;
type Handler = ((req: Req, res: Res, next: Next) => unknown) & {
  [kRouteJails]?: RouteJails;
  [kMiddleware]?: true;
  stack?: Layer[];
};
type WrappedLayer = Layer & { [kWrapped]?: true };

/** An Express app handed to a router's `use` (a function with the app's methods). */
function isApp(handle: Function): boolean {
  const app = handle as unknown as { handle?: unknown; set?: unknown };
  return typeof app.handle === 'function' && typeof app.set === 'function';
}

/**
 * The app mounted on `parent` that the request is in now: the one whose `request` (Express's
 * `app.request`, which names its app) inherits directly from the parent's, found in the request's
 * prototype chain (deeper apps' requests inherit from it in turn), mounted at `path` (the layer's
 * patterns as declared). Undefined when none is.
 */
function mountedApp(req: Req, parent: Req['app'], path: Patterns): Req['app'] | undefined {
  const above = (parent as { request?: object }).request;
  if (above === undefined) return undefined;
  for (
    let proto = Object.getPrototypeOf(req) as object | null, depth = 0;
    proto !== null && depth < 32;
    depth++
  ) {
    const next = Object.getPrototypeOf(proto) as object | null;
    if (next === above) {
      const app = Object.getOwnPropertyDescriptor(proto, 'app')?.value as Req['app'] | undefined;
      if (app === undefined || app === parent || routerOf(app) === undefined) return undefined;
      // The app this layer mounts, as Express noted its last mount: an app mounted in two places
      // inherits from the parent that mounted it last, and may be another layer's.
      const mounted = app as unknown as { parent?: unknown; mountpath?: unknown };
      return mounted.parent === parent && samePath(mounted.mountpath, path) ? app : undefined;
    }
    proto = next;
  }
  return undefined;
}

/** True when an app's `mountpath` (as given to `use`) is the layer's path. */
function samePath(mountpath: unknown, patterns: Patterns): boolean {
  if (mountpath instanceof RegExp) return patterns === undefined;
  const paths = Array.isArray(mountpath) ? mountpath : [mountpath];
  if (patterns === undefined) return false;
  return paths.length === patterns.length && paths.every((p, i) => p === patterns[i]);
}

/**
 * The path an app is mounted at in the apps above it (`parent.use('/api', app)`: `'/api'`), as
 * Express noted its mounts (`mountpath`, `parent`); '' at the top, or where a mount is not one
 * literal path (a pattern, an array, a RegExp: what it matched is not one path).
 */
function mountOf(app: Req['app']): string {
  let path = '';
  for (let at = app as { parent?: unknown; mountpath?: unknown }, depth = 0; depth < 32; depth++) {
    if (at.parent === undefined || at.parent === null) return path;
    const mount = at.mountpath;
    if (typeof mount !== 'string' || /[:*?+()[\]{}]/.test(mount)) return '';
    const own = canonicalRoute(mount);
    if (own !== '/') path = own + path;
    at = at.parent as typeof at;
  }
  return '';
}

/** A handler's `next(value)` that passes the request on to the next handler, not to an error handler. */
function passesOn(error: unknown): boolean {
  return !error || error === 'route' || error === 'router';
}

/** The router of an app, Express 4 or 5, without creating one. */
export function routerOf(app: Req['app']): Router | undefined {
  return app._router ?? (Object.getOwnPropertyDescriptor(app, 'router') ? app.router : undefined);
}

/** The adapter's part at each layer. */
export interface LayerHooks {
  /** A route config its handler carries (see the `routeConfigOf` option), compiled. */
  readonly configOf: ((handler: Function) => RouteJails) | undefined;
}

/** A layer's patterns as declared, and canonical (see `canonicalRoute`), computed once. */
interface Known {
  readonly raw: readonly string[];
  readonly canonical: readonly string[];
}

function known(patterns: Patterns): Known | undefined {
  if (patterns === undefined) return undefined;
  return { raw: patterns, canonical: patterns.map(canonicalRoute) };
}

/**
 * Wraps every layer of an app's router tree once (new layers when the tree grew since), so that a
 * request learns the route Express chose as it enters it. Cheap to call on every request: a
 * router already walked at its current length is skipped after one comparison.
 */
export class Instrumenter {
  readonly #kit: AdapterKit;
  readonly #hooks: LayerHooks;
  readonly #walked = new WeakMap<Router, number>();
  #kMatched: symbol | null | undefined;

  constructor(kit: AdapterKit, hooks: LayerHooks) {
    this.#kit = kit;
    this.#hooks = hooks;
  }

  /**
   * Walks the app's router when it has layers this instrumenter has not seen. `root`: the app is
   * the one whose middleware admits requests (its routes are read without its mount).
   */
  app(app: Req['app'], root = false): void {
    const router = routerOf(app);
    if (router !== undefined && this.#walked.get(router) !== router.stack.length) {
      if (!this.#walked.has(router))
        this.#kit.keeper.checkRoutes(
          declaredRoutes(router, ''),
          this.ignoresCase(app),
          root ? mountOf(app) : '',
        );
      this.#walk(router);
    }
  }

  /**
   * The middleware mounted again in a sub-app, as the request enters it: the sub-app's router
   * takes the pattern its mount was entered by.
   */
  enterApp(app: Req['app'], state: RequestState): void {
    this.app(app);
    const router = routerOf(app);
    const entered = state.mounts?.get(PENDING_APP);
    if (router === undefined || router === state.root || state.mounts === null) return;
    if (entered === undefined) state.mounts.delete(router);
    else state.mounts.set(router, entered);
  }

  /** True when the app's router matches paths case-insensitively (Express's default). */
  ignoresCase(app: Req['app']): boolean {
    return routerOf(app)?.caseSensitive !== true;
  }

  #walk(router: Router): void {
    // A router's own setting: express.Router() does not inherit the app's (undefined: insensitive).
    const ignoreCase = router.caseSensitive !== true;
    this.#walked.set(router, router.stack.length);
    for (const layer of router.stack as WrappedLayer[]) {
      const child = layer.handle.stack === undefined ? undefined : (layer.handle as unknown as Router);
      if (layer[kWrapped]) {
        if (child !== undefined && this.#walked.get(child) !== child.stack.length) this.#walk(child);
        continue;
      }
      if (layer.handle.length > 3) continue; // error handlers keep their arity, and carry no route
      if ((layer.handle as Handler)[kMiddleware] === true) continue; // counted by mountsOf, not wrapped
      layer[kWrapped] = true;
      const patterns = known(patternsOf(layer));
      if (layer.route !== undefined) this.#wrapRoute(layer, patterns, ignoreCase, router);
      else if (child !== undefined) {
        this.#wrapMount(layer, patterns, ignoreCase, router, child);
        this.#walk(child);
      } else if (layer.handle.name === 'mounted_app') this.#wrapApp(layer, patterns, ignoreCase, router);
      else if (isApp(layer.handle))
        this.#wrapApp(layer, patterns, ignoreCase, router, layer.handle as unknown as Req['app']);
      else if (!(patterns?.raw.length === 1 && patterns.raw[0] === '/'))
        this.#wrapUse(layer, patterns, ignoreCase, router);
    }
  }

  /**
   * The jails the request takes slots in here, those it holds left out: by the route's pattern,
   * or, where the router gives no pattern text (a RegExp), by the request's path, as its response
   * is judged. Without them, parallel guesses at a RegExp route all ran.
   */
  #targets(req: Req, state: RequestState, route: string | undefined, ignoreCase: boolean): Targets {
    const kit = this.#kit;
    const targets =
      route === undefined
        ? kit.pathTargets(req.method, state.path, ignoreCase, state.jails)
        : kit.targets(req.method, route, ignoreCase, state.jails);
    return notHeld(targets, state.slots);
  }

  /** The pattern the request entered `owner` by: '' for the app's own router. */
  #prefix(state: RequestState, owner: Router): string | undefined {
    return owner === state.root ? '' : state.mounts?.get(owner);
  }

  /** The full pattern of the layer the request is entering: its mounts' patterns, then its own. */
  #full(
    req: Req,
    state: RequestState,
    layer: Layer,
    patterns: Known | undefined,
    ignoreCase: boolean,
    owner: Router,
  ) {
    if (patterns === undefined) return undefined;
    const prefix = this.#prefix(state, owner);
    if (prefix === undefined) return undefined;
    const own = this.#own(req, layer, patterns, ignoreCase);
    return own === undefined ? undefined : joinPatterns(prefix, own);
  }

  /** The layer's own pattern, canonical; of an array, the element the router matched. */
  #own(req: Req, layer: Layer, patterns: Known, ignoreCase: boolean): string | undefined {
    if (patterns.canonical.length === 1) return patterns.canonical[0];
    if (typeof layer.path !== 'string') {
      // router 2.3+ keeps no text on the layer, but the element it matched on the request.
      if (this.#kMatched === undefined) {
        this.#kMatched =
          Object.getOwnPropertySymbols(req).find((s) => s.description === MATCHED_ROUTE) ?? null;
      }
      const matched =
        this.#kMatched === null ? undefined : (req as unknown as Record<symbol, unknown>)[this.#kMatched];
      return typeof matched === 'string' ? canonicalRoute(matched) : undefined;
    }
    const element = chosen(patterns.raw, layer.path, ignoreCase);
    return element === undefined ? undefined : canonicalRoute(element);
  }

  /** A router mounted at a path: remember the pattern the request entered it by. */
  #wrapMount(
    layer: Layer,
    patterns: Known | undefined,
    ignoreCase: boolean,
    owner: Router,
    child: Router,
  ): void {
    const original = layer.handle;
    const walked = this.#walked;
    const self = this;
    layer.handle = function jailkeeperMount(this: unknown, req: Req, res: Res, next: Next) {
      const state = stateOf(res);
      if (state !== undefined) {
        const entered = self.#full(req, state, layer, patterns, ignoreCase, owner);
        if (entered !== undefined) {
          state.mounts ??= new Map();
          state.mounts.set(child, entered);
        } else state.mounts?.delete(child);
        if (walked.get(child) !== child.stack.length) self.#walk(child);
      }
      return original.call(this, req, res, next);
    } as Layer['handle'];
    (layer.handle as Handler).stack = child.stack;
  }

  /**
   * A sub-app mounted at a path (`app.use('/sub', sub)`, or an app handed to a router's `use`,
   * then `known`). Express's layer does not name the app it mounts, so the first request that
   * enters it and stays (it did not pass the request on before the layer returned) shows it: the
   * app whose `request` is, in the request's prototype chain, the one just below the parent's
   * (Express makes a mounted app's `request` inherit its parent's, and sets the request's
   * prototype to the app's as it enters). From then on its router is walked like the parent's and
   * its routes take their slots where the router chose, with their configs, case setting and
   * method, whether or not it mounts the middleware itself. Until then (the first request through
   * it) the request is judged by its path, and takes no slot here: slots taken at the entry held
   * requests that only passed through it (a sub-app at '/' before an exempt long poll: 429).
   */
  #wrapApp(
    layer: Layer,
    patterns: Known | undefined,
    ignoreCase: boolean,
    owner: Router,
    known?: Req['app'],
  ): void {
    const original = layer.handle;
    const self = this;
    let sub = known;
    layer.handle = function jailkeeperApp(this: unknown, req: Req, res: Res, next: Next) {
      const state = stateOf(res);
      if (state === undefined) return original.call(this, req, res, next);
      const entered = self.#full(req, state, layer, patterns, ignoreCase, owner);
      state.mounts ??= new Map();
      if (entered !== undefined) state.mounts.set(PENDING_APP, entered);
      else state.mounts.delete(PENDING_APP);
      const before = state.route;
      const beforeCase = state.caseInsensitive;
      state.route = undefined;
      state.caseInsensitive = ignoreCase; // a sub-app's settings inherit its parent's
      state.method = req.method; // after a method override mounted before it
      if (sub !== undefined) {
        self.app(sub);
        const router = routerOf(sub);
        if (router !== undefined) {
          if (entered !== undefined) state.mounts.set(router, entered);
          else state.mounts.delete(router);
        }
      }
      const parent = sub === undefined ? req.app : undefined;
      let left = false;
      const out = original.call(this, req, res, (error?: unknown) => {
        left = true;
        state.route = before;
        state.caseInsensitive = beforeCase;
        next(error);
      });
      if (parent !== undefined && !left && sub === undefined) {
        sub = mountedApp(req, parent, patterns?.raw);
        if (sub !== undefined) self.app(sub);
      }
      return out;
    } as Layer['handle'];
  }

  /** A route: its full pattern is the request's route; admit there (targeted jails, jail-scope bans). */
  #wrapRoute(layer: Layer, patterns: Known | undefined, ignoreCase: boolean, owner: Router): void {
    const original = layer.handle;
    const kit = this.#kit;
    const hooks = this.#hooks;
    const stack = layer.route?.stack ?? [];
    const own =
      stack.map((l) => (l.handle as Handler)[kRouteJails]).find((j) => j !== undefined) ??
      (hooks.configOf === undefined
        ? undefined
        : stack.map((l) => hooks.configOf?.(l.handle)).find((j) => j !== undefined));
    const self = this;
    layer.handle = function jailkeeperRoute(this: unknown, req: Req, res: Res, next: Next) {
      const state = stateOf(res);
      if (state === undefined) return original.call(this, req, res, next);
      const route = self.#full(req, state, layer, patterns, ignoreCase, owner);
      state.route = route;
      state.caseInsensitive = ignoreCase;
      state.method = req.method;
      let onward = next;
      if (own !== undefined || state.redispatched) {
        // A route with a config of its own (or the first after a dispatch again): its config holds
        // while it runs, and is given back when it passes the request on (an exempt alias that
        // rewrote the URL to the login and called next() made the login count nowhere). Not on
        // next(error): the error handler answers for the route (an exempt /ws's 403 stays exempt).
        const jails = state.jails;
        const redispatched = state.redispatched;
        state.jails = own;
        state.redispatched = false;
        onward = (error?: unknown) => {
          if (passesOn(error)) {
            state.jails = jails;
            state.redispatched = redispatched;
          }
          next(error);
        };
      }
      if (kit.jailScope && state.refused()) return undefined;
      const targets = self.#targets(req, state, route, ignoreCase);
      // Nothing to reserve here: on to the route's handlers without a closure. Jails keyed by a
      // function ask for their keys where the route is known.
      const admitted = targets.length === 0 && kit.keyJails.length === 0 ? true : state.admit(targets);
      if (admitted === true) return original.call(this, req, res, onward);
      // A throw after an asynchronous admission goes where Express sends a handler's throw.
      admitted.then((go) => go && original.call(this, req, res, onward)).catch(next);
      return undefined;
    } as Layer['handle'];
  }

  /** A handler mounted with `app.use(path, fn)`: the route while it runs; given back when it calls next(). */
  #wrapUse(layer: Layer, patterns: Known | undefined, ignoreCase: boolean, owner: Router): void {
    const original = layer.handle;
    const kit = this.#kit;
    const self = this;
    const config = (original as Handler)[kRouteJails];
    layer.handle = function jailkeeperUse(this: unknown, req: Req, res: Res, next: Next) {
      const state = stateOf(res);
      // jk.route() mounted with app.use: a config for what follows, not a handler.
      if (state === undefined || config !== undefined) return original.call(this, req, res, next);
      const before = state.route;
      const beforeCase = state.caseInsensitive;
      const beforeJails = state.jails;
      const redispatched = state.redispatched;
      const route = self.#full(req, state, layer, patterns, ignoreCase, owner);
      state.route = route;
      state.caseInsensitive = ignoreCase;
      state.method = req.method;
      if (redispatched) {
        // the first handler after a dispatch again: as a route without a config (see redispatched)
        state.jails = undefined;
        state.redispatched = false;
      }
      if (kit.jailScope && state.refused()) return undefined;
      const targets = self.#targets(req, state, route, ignoreCase);
      // What the handler returns goes back to Express: Express 5 sends an async handler's rejection
      // to next(error), as it does without jailkeeper.
      const run = (): unknown =>
        original.call(this, req, res, (error?: unknown) => {
          state.route = before;
          state.caseInsensitive = beforeCase;
          if (passesOn(error)) {
            state.jails = beforeJails;
            state.redispatched = redispatched;
          }
          next(error);
        });
      const admitted = targets.length === 0 && kit.keyJails.length === 0 ? true : state.admit(targets);
      if (admitted === true) return run();
      // A throw after an asynchronous admission goes where Express sends a handler's throw: without
      // it, a handler mounted with app.use that threw after a slow body ended the process.
      admitted.then((go) => (go ? run() : undefined)).catch(next);
      return undefined;
    } as Layer['handle'];
  }
}

/**
 * How many jailkeeper middlewares are mounted in a router's tree (its routers' and its routes',
 * not its sub-apps'): more than one, each would take its own slots for every attempt. Walked only when
 * the middleware meets a request it admitted already, in its own app: mounted twice, or the
 * request dispatched again through the app (`app.handle(req, res, next)`, an SPA fallback).
 */
export function mountsOf(router: Router, depth = 0): number {
  if (depth > 16) return 0;
  let n = 0;
  for (const layer of router.stack) {
    const handle = layer.handle as Handler;
    if (handle[kMiddleware] === true) n++;
    else if (layer.route !== undefined) {
      for (const inner of layer.route.stack) if ((inner.handle as Handler)[kMiddleware] === true) n++;
    } else if (handle.stack !== undefined) n += mountsOf(handle as unknown as Router, depth + 1);
  }
  return n;
}

/** The full patterns of a router's routes (and its routers' routes), for `keeper.checkRoutes()`. */
function declaredRoutes(router: Router, prefix: string, depth = 0): string[] {
  const out: string[] = [];
  if (depth > 16) return out;
  for (const layer of router.stack) {
    const patterns = patternsOf(layer);
    if (patterns === undefined) continue;
    const child = layer.handle.stack === undefined ? undefined : (layer.handle as unknown as Router);
    for (const pattern of patterns) {
      if (layer.route !== undefined) out.push(joinPatterns(prefix, pattern));
      else if (child !== undefined)
        out.push(...declaredRoutes(child, joinPatterns(prefix, pattern), depth + 1));
    }
  }
  return out;
}
