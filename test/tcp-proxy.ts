/**
 * A TCP proxy in front of Redis for fault tests: it can hold replies back (`delayMs`, in order),
 * cut the link (`cut()`: open connections are reset and new ones refused) until `restore()`, and
 * drop it silently (`partition()`: nothing gets through either way, no connection is reset, as a
 * partition looks to TCP) until `heal()`, when what was held arrives, as TCP's retransmissions
 * would deliver it. Loopback only; stopped by `close()`.
 */
import { once } from 'node:events';
import { createServer, type Server, Socket } from 'node:net';

export class TcpProxy {
  delayMs = 0;
  /** Extra delay of the replies on the first connection only (a client's commands, not its subscriber). */
  firstConnectionDelayMs = 0;
  #connections = 0;
  #cut = false;
  /** While partitioned: what each direction sent, held (and connections not yet made upstream). */
  #held: (() => void)[] | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #upstreamPort: number;

  constructor(upstreamPort: number) {
    this.#upstreamPort = upstreamPort;
    this.#server = createServer((downstream) => {
      if (this.#cut) {
        downstream.resetAndDestroy();
        return;
      }
      const upstream = new Socket();
      const open = () => upstream.connect(this.#upstreamPort, '127.0.0.1');
      if (this.#held) this.#held.push(open);
      else open();
      this.#sockets.add(downstream).add(upstream);
      const extra = this.#connections++ === 0 ? this.firstConnectionDelayMs : 0;
      let releaseAt = 0;
      downstream.on('data', (chunk) => {
        if (this.#held) this.#held.push(() => upstream.write(chunk));
        else upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (this.#held) {
          this.#held.push(() => downstream.writable && downstream.write(chunk));
          return;
        }
        const delay = this.delayMs + extra;
        if (delay === 0 && releaseAt <= Date.now()) {
          downstream.write(chunk);
          return;
        }
        releaseAt = Math.max(Date.now() + delay, releaseAt);
        setTimeout(() => downstream.writable && downstream.write(chunk), releaseAt - Date.now());
      });
      const close = () => {
        this.#sockets.delete(upstream);
        this.#sockets.delete(downstream);
        upstream.destroy();
        downstream.destroy();
      };
      downstream.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  async listen(): Promise<number> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return (this.#server.address() as { port: number }).port;
  }

  /** A partition: every connection through the proxy is reset, and new ones are refused. */
  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.resetAndDestroy();
    this.#sockets.clear();
  }

  /** A partition: nothing gets through, either way, and nothing is reset, until `heal()`. */
  partition(): void {
    this.#held ??= [];
  }

  /** The partition ends: what was held is delivered, in order, then traffic flows again. */
  heal(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const deliver of held) deliver();
  }

  /** The link is back: new connections go through. */
  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
