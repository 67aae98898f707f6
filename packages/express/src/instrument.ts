import type { ClientIdentity, Slots, Targets } from '@jailkeeper/core';
import {
  type AdapterKit,
  canonicalRoute,
  mergeSlots,
  notHeld,
  type RouteJails,
} from '@jailkeeper/core/adapter';
import {
  chosen,
  joinPatterns,
  type Layer,
  type Patterns,
  patternsOf,
  type Router,
} from './route-identity.js';

/** What the middleware keeps per request in `res.locals` (a null-prototype object Express makes). */
export interface RequestState {
  readonly identity: ClientIdentity;
  slots: Slots | null;
  /** The pattern of the route (or `app.use` handler) the router is in; null: none; undefined: a RegExp. */
  route: string | null | undefined;
  caseInsensitive: boolean;
  /** A route config set by `jk.route()` used as middleware; the route's own config wins. */
  jails: RouteJails;
  /** The pattern of each mount the request entered, by the text it matched (`req.baseUrl`). */
  mounts: Map<string, string> | null;
  /** Marked failed by the app (`jk.fail(req)`): in every jail that applies, or in these. */
  failed: true | Set<string> | undefined;
}

export const kState = Symbol('jailkeeper.state');
/** On a `jk.route()` middleware: its compiled config, read when the route it stands in is wrapped. */
export const kRouteJails = Symbol('jailkeeper.routeJails');
const kWrapped = Symbol('jailkeeper.wrapped');

type Req = {
  method: string;
  baseUrl: string;
  originalUrl: string;
  app: { _router?: Router; router?: Router; get(setting: string): unknown };
};
type Res = { locals: Record<symbol, RequestState | undefined> };
type Next = (error?: unknown) => void;
type Handler = ((req: Req, res: Res, next: Next) => unknown) & {
  [kRouteJails]?: RouteJails;
  stack?: Layer[];
};
type WrappedLayer = Layer & { [kWrapped]?: true };

/** The router of an app, Express 4 or 5, without creating one. */
function routerOf(app: Req['app']): Router | undefined {
  return app._router ?? (Object.getOwnPropertyDescriptor(app, 'router') ? app.router : undefined);
}

/** The adapter's part at each layer: refuse or admit there, then go on with `proceed()`. */
export interface LayerHooks {
  /** At a route (or a targeted `app.use` handler): judge the request where the router is now. */
  enter(
    req: Req,
    res: Res,
    state: RequestState,
    targets: Targets,
    proceed: (slots: Slots | null) => void,
  ): void;
  /** A route config its handler carries (see the `routeConfigOf` option), compiled. */
  readonly configOf: ((handler: Function) => RouteJails) | undefined;
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

  constructor(kit: AdapterKit, hooks: LayerHooks) {
    this.#kit = kit;
    this.#hooks = hooks;
  }

  /** Walks the app's router when it has layers this instrumenter has not seen. */
  app(app: Req['app']): void {
    const router = routerOf(app);
    if (router !== undefined && this.#walked.get(router) !== router.stack.length) {
      this.#walk(router, app.get('case sensitive routing') !== true);
    }
  }

  #walk(router: Router, inheritedIgnoreCase: boolean): void {
    const ignoreCase = router.caseSensitive === undefined ? inheritedIgnoreCase : !router.caseSensitive;
    this.#walked.set(router, router.stack.length);
    for (const layer of router.stack as WrappedLayer[]) {
      if (layer[kWrapped]) {
        if (layer.handle.stack !== undefined) this.#walk(layer.handle as unknown as Router, ignoreCase);
        continue;
      }
      if (layer.handle.length > 3) continue; // error handlers keep their arity, and carry no route
      layer[kWrapped] = true;
      const patterns = patternsOf(layer);
      if (layer.route !== undefined) this.#wrapRoute(layer, patterns, ignoreCase);
      else if (layer.handle.stack !== undefined) {
        this.#wrapMount(layer, patterns, ignoreCase, layer.handle as unknown as Router);
        this.#walk(layer.handle as unknown as Router, ignoreCase);
      } else if (layer.handle.name === 'mounted_app') this.#wrapMount(layer, patterns, ignoreCase, undefined);
      else if (!(patterns?.length === 1 && patterns[0] === '/')) this.#wrapUse(layer, patterns, ignoreCase);
    }
  }

  /** The full pattern of the layer the request is entering: its mounts' patterns, then its own. */
  #fullPattern(req: Req, state: RequestState, layer: Layer, patterns: Patterns, ignoreCase: boolean) {
    if (patterns === undefined) return undefined;
    const prefix = req.baseUrl === '' ? '' : state.mounts?.get(req.baseUrl);
    if (prefix === undefined) return undefined;
    return canonicalRoute(joinPatterns(prefix, chosen(patterns, layer.path, ignoreCase)));
  }

  /** A router (or sub-app) mounted at a path: remember the pattern the request entered it by. */
  #wrapMount(layer: Layer, patterns: Patterns, ignoreCase: boolean, router: Router | undefined): void {
    const original = layer.handle;
    const walked = this.#walked;
    const self = this;
    layer.handle = function jailkeeperMount(this: unknown, req: Req, res: Res, next: Next) {
      const state = res.locals?.[kState];
      if (state !== undefined) {
        const parent = req.baseUrl.slice(0, req.baseUrl.length - trimmedLength(layer.path));
        const prefix = parent === '' ? '' : state.mounts?.get(parent);
        if (patterns !== undefined && prefix !== undefined) {
          state.mounts ??= new Map();
          state.mounts.set(
            req.baseUrl,
            canonicalRoute(joinPatterns(prefix, chosen(patterns, layer.path, ignoreCase))),
          );
        }
        if (router !== undefined && walked.get(router) !== router.stack.length)
          self.#walk(router, ignoreCase);
      }
      return original.call(this, req, res, next);
    } as Layer['handle'];
    if (router !== undefined) (layer.handle as Handler).stack = router.stack;
  }

  /** A route: its full pattern is the request's route; admit there (targeted jails, jail-scope bans). */
  #wrapRoute(layer: Layer, patterns: Patterns, ignoreCase: boolean): void {
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
      const state = res.locals?.[kState];
      if (state === undefined) return original.call(this, req, res, next);
      const route = self.#fullPattern(req, state, layer, patterns, ignoreCase);
      state.route = route;
      state.caseInsensitive = ignoreCase;
      if (own !== undefined) state.jails = own;
      const targets =
        route === undefined
          ? NONE
          : notHeld(kit.targets(req.method, route, ignoreCase, state.jails), state.slots);
      // Nothing to judge here: on to the route's handlers without a closure.
      if (targets.length === 0 && !kit.jailScope) return original.call(this, req, res, next);
      hooks.enter(req, res, state, targets, (slots) => {
        state.slots = mergeSlots(state.slots, slots);
        original.call(this, req, res, next);
      });
      return undefined;
    } as Layer['handle'];
  }

  /** A handler mounted with `app.use(path, fn)`: the route while it runs; given back when it calls next(). */
  #wrapUse(layer: Layer, patterns: Patterns, ignoreCase: boolean): void {
    const original = layer.handle;
    const kit = this.#kit;
    const hooks = this.#hooks;
    const self = this;
    layer.handle = function jailkeeperUse(this: unknown, req: Req, res: Res, next: Next) {
      const state = res.locals?.[kState];
      if (state === undefined) return original.call(this, req, res, next);
      const own = (original as Handler)[kRouteJails];
      if (own !== undefined) {
        // jk.route() mounted with app.use: a config for what follows, not a handler.
        return original.call(this, req, res, next);
      }
      const before = state.route;
      const route = self.#fullPattern(req, state, layer, patterns, ignoreCase);
      state.route = route;
      state.caseInsensitive = ignoreCase;
      const targets =
        route === undefined
          ? NONE
          : notHeld(kit.targets(req.method, route, ignoreCase, state.jails), state.slots);
      hooks.enter(req, res, state, targets, (slots) => {
        state.slots = mergeSlots(state.slots, slots);
        original.call(this, req, res, (error?: unknown) => {
          state.route = before;
          next(error);
        });
      });
      return undefined;
    } as Layer['handle'];
  }
}

const NONE: Targets = Object.freeze([]);

/** The length of the mount text Express appended to `req.baseUrl` (it drops a trailing slash). */
function trimmedLength(matched: string | undefined): number {
  if (matched === undefined) return 0;
  return matched.endsWith('/') ? matched.length - 1 : matched.length;
}
