/**
 * An attacker's traffic, written on raw sockets from a loopback address of its own (so that each
 * attacker is its own client): parallel connections, requests pipelined in one TCP write, HTTP/1.0,
 * attempts abandoned after sending. Only to 127.0.0.0/8; every exchange ends by itself.
 */
import { connect } from 'node:net';
import { PASSWORD } from './fleet.js';

let nextAddress = 0;

/**
 * A fresh client address in 127.0.0.0/8 for each attacker (never 127.0.0.1, where the apps
 * listen), different in each test process so that no two files share one.
 */
export function freshClient(): string {
  const n = nextAddress++;
  const block = 16 + (process.pid % 200);
  return `127.${block}.${Math.floor(n / 254) % 256}.${(n % 254) + 1}`;
}

/** One login attempt as HTTP text. */
function loginRequest(password: string, options: { version?: '1.0' | '1.1'; close?: boolean } = {}): string {
  const body = JSON.stringify({ user: 'admin', password });
  const version = options.version ?? '1.1';
  const connection = version === '1.0' ? '' : options.close === false ? '' : 'Connection: close\r\n';
  return (
    `POST /login HTTP/${version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${connection}\r\n${body}`
  );
}

/** A wrong guess, numbered (never the password). */
function guess(n: number): string {
  const wrong = `guess-${n}`;
  return wrong === PASSWORD ? `${wrong}!` : wrong;
}

/** What one connection got back: the status of each response, in order. */
interface Exchange {
  readonly statuses: number[];
  /** True when the client gave up on its own deadline (a harness failure, not an answer). */
  readonly timedOut: boolean;
}

/**
 * Writes `payload` in one write on a new connection from `from`, and reads until the server closes
 * it (or, with `abandonAfterMs`, closes it itself that long after sending, before any answer).
 */
function exchange(
  port: number,
  from: string,
  payload: string,
  options: { abandonAfterMs?: number; deadlineMs?: number } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let received = '';
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, options.deadlineMs ?? 20_000);
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      socket.write(payload);
      if (options.abandonAfterMs !== undefined) {
        setTimeout(() => socket.destroy(), options.abandonAfterMs);
      }
    });
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(deadline);
      const statuses = [...received.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ statuses, timedOut });
    });
  });
}

/** The instances' ports, spread over `count` requests round-robin. */
function spread(ports: readonly number[], count: number): number[] {
  return Array.from({ length: count }, (_, i) => ports[i % ports.length] as number);
}

/** What an attack did, from the attacker's side. */
export interface AttackResult {
  readonly sent: number;
  readonly statuses: number[];
  readonly timedOut: number;
}

function collect(sent: number, exchanges: readonly Exchange[]): AttackResult {
  return {
    sent,
    statuses: exchanges.flatMap((e) => e.statuses),
    timedOut: exchanges.filter((e) => e.timedOut).length,
  };
}

/** `count` guesses, each on its own connection, all at once, spread over the instances. */
export async function parallel(
  ports: readonly number[],
  from: string,
  count: number,
  version: '1.0' | '1.1' = '1.1',
): Promise<AttackResult> {
  const exchanges = await Promise.all(
    spread(ports, count).map((port, i) => exchange(port, from, loginRequest(guess(i), { version }))),
  );
  return collect(count, exchanges);
}

/**
 * `count` guesses pipelined in one TCP write to each instance (the last one asks to close), so
 * `count` × instances in all. `abandonAfterMs`: the client closes that long after the write.
 */
export async function pipelined(
  ports: readonly number[],
  from: string,
  count: number,
  abandonAfterMs?: number,
): Promise<AttackResult> {
  const exchanges = await Promise.all(
    ports.map((port, p) => {
      let payload = '';
      for (let i = 0; i < count; i++) {
        payload += loginRequest(guess(p * count + i), { close: i === count - 1 });
      }
      return exchange(port, from, payload, abandonAfterMs === undefined ? {} : { abandonAfterMs });
    }),
  );
  return collect(count * ports.length, exchanges);
}

/** `count` guesses on parallel connections, each closed by the client `afterMs` after sending. */
export async function abandoned(
  ports: readonly number[],
  from: string,
  count: number,
  afterMs: number,
): Promise<AttackResult> {
  const exchanges = await Promise.all(
    spread(ports, count).map((port, i) =>
      exchange(port, from, loginRequest(guess(i)), { abandonAfterMs: afterMs }),
    ),
  );
  return collect(count, exchanges);
}

/** `count` guesses one after another, each abandoned `afterMs` after sending (the next sent then). */
export async function abandonedInTurn(
  ports: readonly number[],
  from: string,
  count: number,
  afterMs: number,
): Promise<AttackResult> {
  const exchanges = [];
  for (const [i, port] of spread(ports, count).entries()) {
    exchanges.push(await exchange(port, from, loginRequest(guess(i)), { abandonAfterMs: afterMs }));
  }
  return collect(count, exchanges);
}

/**
 * Guesses that wait for a slot and are abandoned while they wait, then admitted when slots free.
 * `holders` requests (one per slot) send their headers and half their body, so they hold their
 * slots while the body parser waits; then `waiters` guesses are sent and abandoned `afterMs`
 * later; then the holders' bodies are finished as invalid JSON, so the parser answers 400 (not a
 * failure) and their slots free while the waiters' clients are gone.
 */
export async function waitingThenAbandoned(
  ports: readonly number[],
  from: string,
  holders: number,
  waiters: number,
  afterMs: number,
  holding: () => Promise<void>,
): Promise<AttackResult> {
  const rest = '}}}}}}}}}}';
  const body = `{"password":"x"${rest}`;
  const head = (port: number) =>
    `POST /login HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, -rest.length)}`;
  const held = spread(ports, holders).map((port) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('connect', () => socket.write(head(port)));
    const closed = new Promise<Exchange>((resolve) =>
      socket.on('close', () =>
        resolve({
          statuses: [...received.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1])),
          timedOut: false,
        }),
      ),
    );
    return { socket, closed };
  });
  await holding();
  const gone = await abandoned(ports, from, waiters, afterMs);
  for (const h of held) h.socket.write(rest);
  const answers = await Promise.all(held.map((h) => h.closed));
  return collect(holders + waiters, [...answers, { statuses: gone.statuses, timedOut: false }]);
}

/** A GET of `path` as HTTP text (the connection closed after it). */
function getRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
}

/** `count` GETs of `path`, each on its own connection, all at once, spread over the instances. */
export async function parallelGet(
  ports: readonly number[],
  from: string,
  count: number,
  path: string,
): Promise<AttackResult> {
  const exchanges = await Promise.all(
    spread(ports, count).map((port) => exchange(port, from, getRequest(path))),
  );
  return collect(count, exchanges);
}

/**
 * A steady stream: one GET of `path` every `everyMs` (each on its own connection), `count` in all.
 * Also says how many were sent before the first answer came back.
 */
export async function streamGet(
  ports: readonly number[],
  from: string,
  count: number,
  everyMs: number,
  path: string,
): Promise<AttackResult & { sentBeforeFirstAnswer: number }> {
  let sent = 0;
  let beforeAnswer: number | undefined;
  const pending: Promise<Exchange>[] = [];
  for (const port of spread(ports, count)) {
    sent++;
    pending.push(
      exchange(port, from, getRequest(path)).then((e) => {
        if (e.statuses.length > 0) beforeAnswer ??= sent;
        return e;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  const exchanges = await Promise.all(pending);
  return { ...collect(count, exchanges), sentBeforeFirstAnswer: beforeAnswer ?? sent };
}
