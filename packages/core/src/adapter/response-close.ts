import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * EventEmitter's own `on`, as a response has it, called without reading `res.on`: on Express, whose
 * responses change prototype on every request, each read of a response's property costs V8 a
 * lookup of its own (about 2,000 instructions under callgrind). Calling it directly also keeps
 * the listener from a wrapper an app put on the response's own `on` (OpenTelemetry's context
 * binding), so the tag stays on what the response keeps.
 */
const on = EventEmitter.prototype.on;
/**
 * True when EventEmitter's `on` is Node's own (`addListener`, which keeps the function it is
 * given): then the listener a response keeps is the one added, and no count is needed to see it.
 * A module that wrapped `on` itself before this one loaded (an APM agent, a context propagator)
 * may wrap some listeners and not others (only with a context active, only on responses): then
 * every listener added is counted (see `onResponseClose`). Without that, a wrapper that passed a
 * test made once at load hid the tag, and 10 guesses at maxRetry 3 ran 10 times.
 */
const keepsListener =
  on === EventEmitter.prototype.addListener &&
  on.name === 'addListener' &&
  /^function addListener\(type, listener\) \{\s*return _addListener\(this, type, listener, false\);\s*\}$/.test(
    Function.prototype.toString.call(on),
  );

/** Per connection: the close callbacks of its responses queued behind a pipelined one. */
const queued = new WeakMap<Duplex, Set<() => void>>();
/** On a close listener registered with an owner: the owner, found again by `closeOwner()`. */
const kOwner = Symbol('jailkeeper.closeOwner');
/**
 * The owners of responses whose listeners another module wraps as they are added (OpenTelemetry's
 * context binding does): the tag on the listener is not on what the response keeps.
 */
const wrappedOwners = new WeakMap<ServerResponse, object>();
type Owned = ((this: ServerResponse) => void) & { [kOwner]?: object };

function closeQueued(this: Duplex): void {
  const callbacks = queued.get(this);
  queued.delete(this);
  if (callbacks !== undefined) for (const callback of callbacks) callback();
}

/**
 * Calls `listener` once, with the response as `this`, when the response closes: when it is done,
 * or when its client leaves first. Node emits `'close'` on a response when its connection closes,
 * except in two cases, where an adapter would never settle the attempt's slots:
 * - the response is queued behind an earlier one on a pipelined connection (Node 20 emits nothing
 *   on it when the connection dies; nodejs/node#62534): this listens to the connection, once per
 *   connection whatever the number of queued responses;
 * - the response had closed already (its client left while the attempt waited for a slot): the
 *   listener runs on the next tick.
 * A response that owns its live connection (every other request) costs one listener, as before.
 *
 * With `owner`, the listener stays on the response, tagged, after it ran: `closeOwner(res)` finds
 * the owner from the response alone, for the whole life of the response.
 */
export function onResponseClose<T extends ServerResponse>(
  res: T,
  listener: (this: T) => void,
  owner?: object,
  socket: Duplex = res.req.socket,
): void {
  // It owns its live connection: on a network socket, the one the socket writes for (Node sets
  // both sides together; a response destroyed with its socket destroys the socket at once).
  const live =
    socket instanceof Socket
      ? (socket as Socket & { _httpMessage?: unknown })._httpMessage === res && !socket.destroyed
      : res.socket !== null && !res.destroyed && !socket.destroyed;
  if (live) {
    if (owner === undefined) {
      on.call(res, 'close', listener);
      return;
    }
    (listener as Owned)[kOwner] = owner;
    on.call(res, 'close', listener);
    if (!keepsListener && res.listenerCount('close', listener) === 0) wrappedOwners.set(res, owner);
    return;
  }
  let done = false;
  const once: Owned = (): void => {
    if (done) return;
    done = true;
    queued.get(socket)?.delete(once);
    listener.call(res);
  };
  if (owner !== undefined) once[kOwner] = owner;
  // Left on the response once it ran (guarded by done): it is how closeOwner() finds the owner.
  on.call(res, 'close', once);
  if (owner !== undefined && !keepsListener && res.listenerCount('close', once) === 0)
    wrappedOwners.set(res, owner);
  if (res.destroyed || socket.destroyed) {
    process.nextTick(once);
    return;
  }
  let callbacks = queued.get(socket);
  if (callbacks === undefined) {
    callbacks = new Set();
    queued.set(socket, callbacks);
    socket.once('close', closeQueued);
  }
  callbacks.add(once);
}

/**
 * The owner given to `onResponseClose()` for this response, or undefined. Costs one count of the
 * response's close listeners when it has none (a response no attempt opened). Not found when the
 * app removed the response's close listeners (`res.removeAllListeners('close')`).
 */
export function closeOwner(res: ServerResponse): object | undefined {
  if (res.listenerCount('close') === 0) return undefined;
  for (const listener of res.rawListeners('close') as Owned[]) {
    const owner = listener[kOwner];
    if (owner !== undefined) return owner;
  }
  return wrappedOwners.get(res);
}
