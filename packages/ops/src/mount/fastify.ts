import type { Jailkeeper } from '@jailkeeper/core';
import type { FastifyPluginCallback } from 'fastify';
import { type AdminOptions, createAdminApi } from '../admin.js';

/** Options of {@link jailkeeperAdmin}: the admin options, the keeper, and Fastify's `prefix`. */
export interface JailkeeperAdminOptions extends AdminOptions {
  keeper: Jailkeeper;
}

/**
 * The admin API as a Fastify plugin: register it with a `prefix`. Off unless registered; every call
 * needs the bearer token, and callers must be on loopback unless `allowRemote`.
 * @example
 * fastify.register(jailkeeperAdmin, { prefix: '/_jailkeeper', keeper, token: process.env.JAILKEEPER_TOKEN ?? '' });
 */
export const jailkeeperAdmin: FastifyPluginCallback<JailkeeperAdminOptions> = (fastify, options, done) => {
  try {
    const { keeper, ...adminOptions } = options as JailkeeperAdminOptions & { prefix?: string };
    delete (adminOptions as { prefix?: string }).prefix;
    const api = createAdminApi(keeper, adminOptions);
    fastify.route({
      method: ['GET', 'POST', 'DELETE'],
      url: '/*',
      handler: async (request, reply) => {
        const search = request.url.indexOf('?');
        const response = await api.handle({
          method: request.method,
          path: `/${(request.params as { '*'?: string })['*'] ?? ''}`,
          query: new URLSearchParams(search === -1 ? '' : request.url.slice(search + 1)),
          headers: request.headers,
          peer: request.raw.socket.remoteAddress,
          body: request.body,
        });
        reply.code(response.status).headers(response.headers);
        return response.body;
      },
    });
    done();
  } catch (error) {
    done(error as Error);
  }
};
