import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Jailkeeper } from '@jailkeeper/core';
import type { Context, Handler } from 'hono';
import { routePath } from 'hono/route';
import { type AdminOptions, createAdminApi } from '../admin.js';

const BAD_JSON = JSON.stringify({
  error: { code: 'JK_ERR_BAD_REQUEST', message: 'The body is not valid JSON.' },
});

/**
 * The admin API as a Hono handler: mount it on `<path>/*` with `app.all()`. Off unless mounted;
 * every call needs the bearer token, and callers must be on loopback unless `allowRemote`.
 * Routes and JSON are described in the @jailkeeper/ops README (`createAdminApi`).
 * @example
 * app.all('/_jailkeeper/*', jailkeeperAdmin(keeper, { token: process.env.JAILKEEPER_TOKEN ?? '' }));
 */
export function jailkeeperAdmin(keeper: Jailkeeper, options: AdminOptions): Handler {
  const api = createAdminApi(keeper, options);
  return async (c: Context) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    // The path below the mount: the pattern matched (`/_jailkeeper/*`) less its `/*`.
    const mount = routePath(c).replace(/\/?\*$/, '');
    const url = new URL(c.req.url);
    const text = c.req.method === 'GET' || c.req.method === 'HEAD' ? '' : await c.req.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      return new Response(BAD_JSON, { status: 400, headers: { 'content-type': 'application/json' } });
    }
    const response = await api.handle({
      method: c.req.method,
      path: url.pathname.slice(mount.length) || '/',
      query: url.searchParams,
      headers: incoming?.headers ?? c.req.header(),
      peer: incoming?.socket.remoteAddress,
      body,
      secure: (incoming?.socket as TLSSocket | undefined)?.encrypted === true,
    });
    // The console's live feed is a Node stream: handed over as a web stream, ended with the response.
    const out =
      typeof response.body === 'string' ? response.body : (Readable.toWeb(response.body) as ReadableStream);
    return new Response(out, { status: response.status, headers: response.headers });
  };
}
