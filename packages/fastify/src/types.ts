// The plugin's public types: its options, the route config, and what it adds to Fastify's
// request, reply and instance (`declare module 'fastify'`).
import type { Jailkeeper } from '@jailkeeper/core';
import type { AdapterOptions, ClientIdentity, RouteConfig } from '@jailkeeper/core/adapter';
import type { FastifyReply, FastifyRequest } from 'fastify';

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
