import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { JailkeeperError } from '@jailkeeper/core';

/** A request as the framework adapters hand it to the admin API. */
export interface AdminRequest {
  readonly method: string;
  /** The path below the mount point, e.g. `/bans`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The socket's remote address. */
  readonly peer: string | undefined;
  /** The parsed JSON body, when there is one. */
  readonly body: unknown;
  /** True when the request came over TLS (the console then marks its cookie `Secure`). */
  readonly secure?: boolean;
}

/**
 * The admin API's answer, for the adapter to write: status, headers and a body. The body is text,
 * or a stream (the console's live feed, `GET /bans/stream`, and a `GET /export` over 256 KB, which
 * is never joined into one string): pipe it, and destroy it when the response closes (Fastify
 * does both for a returned stream).
 */
export interface AdminResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string | Readable;
}

const MAX_BODY = 64 * 1024;

/** A JSON answer that no cache keeps and no browser sniffs. */
export function json(status: number, value: unknown, headers: Record<string, string> = {}): AdminResponse {
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    },
    body: JSON.stringify(value),
  };
}

/** An error answer: `{ error: { code, message } }`. */
export function failure(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): AdminResponse {
  return json(status, { error: { code, message } }, headers);
}

/** The answer for an error thrown by an operation: 400 for bad input, 503 when the store failed. */
export function errorResponse(error: unknown): AdminResponse {
  if (error instanceof JailkeeperError) {
    const code = (error as JailkeeperError).code;
    const status = code === 'JK_ERR_STORE' || code === 'JK_ERR_CLOSED' ? 503 : 400;
    return failure(status, code, (error as Error).message);
  }
  return failure(500, 'JK_ERR_STORE', `The operation failed: ${(error as Error)?.message ?? error}`);
}

/** Writes an admin response to a Node response: text at once, a stream piped until either side closes. */
function writeResponse(res: ServerResponse, response: AdminResponse): void {
  res.writeHead(response.status, response.headers);
  const { body } = response;
  if (typeof body === 'string') {
    res.end(body);
    return;
  }
  res.on('close', () => body.destroy());
  body.pipe(res);
  res.flushHeaders();
}

/**
 * A Node `(req, res)` handler (and Express middleware) around `handle`: it builds the request
 * (reading a JSON body of at most 64 KB unless a body parser already did) and writes the answer.
 */
export function nodeHandler(
  handle: (request: AdminRequest) => Promise<AdminResponse>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const send = (response: AdminResponse) => writeResponse(res, response);
    const run = (body: unknown) =>
      handle({
        method: (req.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        peer: req.socket.remoteAddress,
        body,
        secure: (req.socket as TLSSocket).encrypted === true,
      }).then(send, () => send(failure(500, 'JK_ERR_STORE', 'The admin API failed.')));
    const parsed = (req as { body?: unknown }).body;
    if (parsed !== undefined || req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') {
      void run(parsed);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        send(failure(413, 'JK_ERR_BAD_REQUEST', 'The body is over 64 KB.'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text === '') {
        void run(undefined);
        return;
      }
      try {
        void run(JSON.parse(text));
      } catch {
        send(failure(400, 'JK_ERR_BAD_REQUEST', 'The body is not valid JSON.'));
      }
    });
  };
}
