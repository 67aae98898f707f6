import type { Jailkeeper } from '@jailkeeper/core';
import type { RequestHandler } from 'express';
import { type AdminOptions, createAdminApi } from '../admin.js';

/**
 * The admin API as Express middleware: mount it under a path of your choice. Off unless mounted;
 * every call needs the bearer token, and callers must be on loopback unless `allowRemote`.
 * Routes and JSON are described in the core README (`createAdminApi`).
 * @example
 * app.use('/_jailkeeper', jailkeeperAdmin(keeper, { token: process.env.JAILKEEPER_TOKEN ?? '' }));
 */
export function jailkeeperAdmin(keeper: Jailkeeper, options: AdminOptions): RequestHandler {
  const api = createAdminApi(keeper, options);
  return (req, res) => api.node(req, res);
}
