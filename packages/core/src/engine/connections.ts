import type { IncomingMessage, Server } from 'node:http';
import { type Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyTrust } from '../identity/client-ip.js';
import type { ClientIdentity } from '../identity/identity.js';
import { pathOf } from '../paths/normalize-path.js';
import type { Banned, Verdict } from './ban-index.js';

const kTracked = Symbol('jailkeeper.trackedClient');

type TrackedSocket = Duplex & { [kTracked]?: string };

/**
 * The open connections of each client on this instance, so that a ban closes them: keep-alive
 * sockets of directly connected clients, and upgraded (WebSocket) sockets. A keep-alive socket from
 * a trusted proxy is never tracked: it carries other clients too.
 */
export class ConnectionTracker {
  readonly #byClient = new Map<string, Set<TrackedSocket>>();

  get size(): number {
    return this.#byClient.size;
  }

  /**
   * Registers a socket once for its client; later calls for the same socket cost one property read.
   * Only real `net.Socket`s (TLS ones included) are tracked: they are released on 'close', which an
   * injected request's stand-in socket never emits, so tracking one would hold it for ever.
   */
  track(socket: Duplex, identity: ClientIdentity, upgraded = false): void {
    const s = socket as TrackedSocket;
    if (s[kTracked] !== undefined || (identity.viaProxy === true && !upgraded) || s.destroyed) return;
    if (!(socket instanceof Socket)) return;
    s[kTracked] = identity.key;
    let set = this.#byClient.get(identity.key);
    if (set === undefined) {
      set = new Set();
      this.#byClient.set(identity.key, set);
    }
    set.add(s);
    s.once('close', () => {
      const current = this.#byClient.get(identity.key);
      current?.delete(s);
      if (current?.size === 0) this.#byClient.delete(identity.key);
    });
  }

  /** Destroys every tracked socket of the client; returns how many. */
  close(key: string): number {
    const set = this.#byClient.get(key);
    if (set === undefined) return 0;
    this.#byClient.delete(key);
    for (const socket of set) socket.destroy();
    return set.size;
  }
}

/** What the guard needs from the keeper. */
export interface GuardTarget {
  resolve(
    peer: string | undefined,
    headers: IncomingMessage['headers'],
    request?: unknown,
    trust?: ProxyTrust,
  ): ClientIdentity | undefined;
  check(client: ClientIdentity, request?: { method: string; route?: string | null; path: string }): Verdict;
  trackConnection(socket: Duplex, identity: ClientIdentity, upgraded?: boolean): void;
}

/** Options of `keeper.guard(server)`. */
export interface GuardOptions {
  /** Destroy a banned peer's connection at `connection`, before any HTTP parsing (direct peers only). @default true */
  connection?: boolean;
  /** Refuse a banned client's upgrade (WebSocket) request, and track upgraded sockets. @default true */
  upgrade?: boolean;
  /** How an upgrade is refused: `'forbid'` writes a 403, `'drop'` destroys the socket (403 behind a proxy). @default 'forbid' */
  block?: 'forbid' | 'drop';
  /**
   * The answer written to a refused upgrade: the adapter's response options (status, headers,
   * body) with Retry-After. @default an empty 403
   */
  answer?: (verdict: Banned) => string;
  /**
   * With `trustedProxies: 'express'`, the app's compiled `trust proxy` function (required then;
   * `@jailkeeper/express`'s `jk.guard()` passes it).
   */
  trust?: ProxyTrust;
}

const FORBIDDEN = 'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/**
 * Gates a server's `connection` and `upgrade` events. It wraps `emit` rather than adding a
 * listener, so that a refused socket never reaches any listener, whatever order they were added
 * in (Node's HTTP parser and WebSocket libraries listen on these events). Returns a function that
 * removes the gate.
 */
export function guardServer(
  target: GuardTarget,
  server: Server | NetServer,
  options: GuardOptions = {},
): () => void {
  const gateConnection = options.connection ?? true;
  const gateUpgrade = options.upgrade ?? true;
  const drop = options.block === 'drop';
  const trust = options.trust;
  const original = server.emit;
  // Every event of the server passes here, 'request' included: no rest arguments or arrays on
  // the way through, only a compare and a forwarding apply.
  function emit(this: Server, event: string | symbol, a?: unknown, b?: unknown): boolean {
    if (event === 'connection') {
      if (gateConnection && refuseConnection(a as Socket)) return true;
    } else if (event === 'upgrade') {
      if (gateUpgrade && refuseUpgrade(a as IncomingMessage, b as Duplex)) return true;
    }
    // biome-ignore lint/complexity/noArguments: forwarding every argument without allocating
    return Reflect.apply(original, this, arguments) as boolean;
  }
  function refuseConnection(socket: Socket): boolean {
    const identity = target.resolve(socket.remoteAddress, {}, undefined, trust);
    // A trusted proxy's connection carries many clients: only headers can tell them apart.
    if (identity === undefined || identity.viaProxy === true || !target.check(identity).banned) return false;
    socket.destroy();
    return true;
  }
  function refuseUpgrade(request: IncomingMessage, socket: Duplex): boolean {
    const identity = target.resolve(request.socket.remoteAddress, request.headers, request, trust);
    if (identity === undefined) return false;
    const verdict = target.check(identity, {
      method: request.method ?? 'GET',
      route: undefined,
      path: pathOf(request.url),
    });
    if (verdict.banned) {
      if (drop && identity.viaProxy !== true) socket.destroy();
      else socket.end(options.answer === undefined ? FORBIDDEN : options.answer(verdict));
      return true;
    }
    target.trackConnection(socket, identity, true);
    return false;
  }
  server.emit = emit as typeof server.emit;
  return () => {
    if (server.emit === (emit as typeof server.emit)) server.emit = original;
  };
}
