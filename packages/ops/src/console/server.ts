import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@jailkeeper/core';
import { AdminGate } from '../admin-gate.js';
import { type AdminRequest, type AdminResponse, failure, nodeHandler } from '../admin-http.js';
import type { LockoutOptions } from '../token-lockout.js';
import { AuditLog } from './audit-log.js';
import type { ConsoleBackend } from './backend.js';
import { type ConsoleOptions, createConsoleHandler } from './console.js';

/** Options of {@link createConsoleServer}. */
export interface ConsoleServerOptions extends ConsoleOptions {
  /** The token operators sign in with; at least 16 characters. */
  token: string;
  /** Callers other than loopback: `true`, or a list of CIDRs. @default false */
  allowRemote?: boolean | string[];
  /** @default { maxRetry: 5, findTime: '10m', banTime: '15m' } */
  lockout?: LockoutOptions;
  /** Where audit lines go (one per action). */
  logger?: Logger;
}

/** A console on its own (the CLI's fleet view): a Node handler serving `/console/`. */
export interface ConsoleServer {
  handle(request: AdminRequest): Promise<AdminResponse>;
  node(req: IncomingMessage, res: ServerResponse): void;
  close(): void;
}

/**
 * The console over any {@link ConsoleBackend}, with the admin API's gate (loopback unless
 * `allowRemote`, the token, the lockout of wrong tokens). `jailkeeper console` serves it for a
 * whole fleet from the shared store.
 * @example
 * const server = createConsoleServer(backend, { token });
 * http.createServer(server.node).listen(9181, '127.0.0.1');
 */
export function createConsoleServer(backend: ConsoleBackend, options: ConsoleServerOptions): ConsoleServer {
  const { token, allowRemote, lockout, logger, ...consoleOptions } = options;
  const audit = new AuditLog(logger);
  const now = () => backend.now();
  const gate: AdminGate = new AdminGate({
    token,
    allowRemote,
    lockout,
    path: 'console',
    now,
    audit,
  });
  const handler = createConsoleHandler(backend, { gate, audit, options: consoleOptions, path: 'console' });
  const handle = async (request: AdminRequest): Promise<AdminResponse> => {
    const refused = gate.admit(request);
    if (refused !== undefined) return refused;
    if (request.path === '/' && request.method === 'GET') {
      return { status: 308, headers: { location: 'console/' }, body: '' };
    }
    if (request.path === '/console' || request.path.startsWith('/console/')) {
      return handler.handle(request, request.path.slice('/console'.length));
    }
    return failure(404, 'JK_ERR_BAD_REQUEST', 'The console is at /console/.');
  };
  return { handle, node: nodeHandler(handle), close: () => handler.close() };
}
