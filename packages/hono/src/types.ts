// The middleware's public types: its options, `c.var.jailkeeper`, and the middleware with its
// route-level helpers.
import type { Server } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { ClientIdentity, RefusalInfo, RefusalOptions, RouteConfig } from '@jailkeeper/core/adapter';
import type { Context, MiddlewareHandler } from 'hono';

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
  /**
   * Names the account this request tries (a login's user name, or better the app's user id),
   * once the app knows it: the jails keyed by account judge it now. Resolves true to go on; false
   * when jailkeeper refused the request (return `c.res`: the refusal is written there). See
   * docs/accounts.md.
   */
  account(name: unknown): Promise<boolean>;
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
  /** `c.var.jailkeeper.account()`; true when the middleware did not admit the request. */
  account(c: Context, name: unknown): Promise<boolean>;
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

export type { RouteConfig };
