// The plugin's request state: the decorations it keeps on a request and its raw response, and
// the listener that counts a closed response from them.
import type {
  AdapterKit,
  ClientIdentity,
  ResponseFacts,
  RouteJails,
  Slots,
  Targets,
} from '@jailkeeper/core/adapter';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** On a route's config: the route compiled once (its pattern, its jailkeeper config). */
export const kRoute = Symbol('jailkeeper.route');
/** Request decorations (declared, so Fastify builds them into the request's shape). */
export const kIdentity = Symbol('jailkeeper.identity');
export const kSlots = Symbol('jailkeeper.slots');
export const kRouteOf = Symbol('jailkeeper.routeOf');
export const kFailed = Symbol('jailkeeper.failed');
export const kAccount = Symbol('jailkeeper.account');
export const kReply = Symbol('jailkeeper.reply');
/** On the raw response: the request, for the close listener. */
export const kRequest = Symbol('jailkeeper.request');

/** A route as jailkeeper sees it, compiled when declared (or at its first request). */
export interface CompiledRoute {
  /** The pattern the router matched, with its prefix; null for the 404 handler. */
  readonly url: string | null;
  readonly jails: RouteJails;
}

export type JkResponse = FastifyReply['raw'] & { [kRequest]?: FastifyRequest };
export type JkRequest = FastifyRequest & {
  [kIdentity]: ClientIdentity | null;
  [kSlots]: Slots | null;
  [kRouteOf]: CompiledRoute | null;
  [kFailed]: true | Set<string> | null;
  [kAccount]: string | null;
  [kReply]: FastifyReply | null;
};
export type RouteConfigObject = Record<PropertyKey, unknown> & { [kRoute]?: CompiledRoute };

export const NOT_A_ROUTE: CompiledRoute = Object.freeze({ url: null, jails: undefined });
export const NO_TARGETS: Targets = Object.freeze([]);

/** What the toolkit counts of a closed response: the request's facts, its slots, how it ended. */
export function factsOf(
  request: JkRequest,
  identity: ClientIdentity,
  caseInsensitive: boolean,
  status: number,
  slots: Slots | null,
  abandoned: boolean,
  account: string | undefined,
): ResponseFacts {
  const route = request[kRouteOf] ?? NOT_A_ROUTE;
  return {
    identity,
    method: request.method,
    route: route.url,
    caseInsensitive,
    url: request.url,
    status,
    userAgent: request.headers['user-agent'],
    jails: route.jails,
    slots,
    abandoned,
    failed: request[kFailed] ?? undefined,
    account,
  };
}

/**
 * The listener that counts a finished (or aborted) response, built once per plugin (it closes over
 * the kit): `this` is the raw response, so a request costs no new closure. A refused request
 * never gets here.
 */
export function countOnClose(kit: AdapterKit, caseInsensitive: boolean): (this: JkResponse) => void {
  return function onClose(this: JkResponse): void {
    const request = this[kRequest] as JkRequest | undefined;
    if (request === undefined) return;
    const identity = request[kIdentity];
    if (identity === null) return;
    const slots = request[kSlots];
    // A clean response holding no slot: nothing to build.
    if (kit.watches(this.statusCode, slots, request[kFailed] ?? undefined)) {
      kit.count(
        factsOf(
          request,
          identity,
          caseInsensitive,
          this.statusCode,
          slots,
          !this.writableEnded,
          request[kAccount] ?? undefined,
        ),
      );
    }
    kit.closed();
  };
}
