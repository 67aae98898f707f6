/**
 * A Redis for the tests: REDIS_URL when set, else a redis-server started on a free port (and
 * stopped by `stop()`; a server the tests did not start is never stopped).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Jailkeeper } from '@jailkeeper/core';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** Starts the server again on the same port (after `kill()`), for fault tests. */
  restart(): Promise<void>;
  /** Kills the server (only one the tests started). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server stops answering, its data and connections kept (only one the tests started). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A port where Redis is down for certain: held by a server of the test's own that closes every
 * connection at once (a refused connection, to a client). A port from freePort() left unbound is
 * not enough: another test file running beside this one may start its redis-server there, and a
 * store meant to be cut off then counts in it (seen in CI: 'allow' banned a client while "down").
 * `release()` frees the port, for a test that then starts Redis on it.
 */
export async function downPort(): Promise<{ port: number; url: string; release(): Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    release: async () => {
      if (!server.listening) return;
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * Waits until the redis-server `child` answers at `url`. The port came from freePort(), which
 * another test file running beside this one may take before redis-server binds it (its app, or its
 * own redis-server): then this child exits, and whatever answers is not ours. So it is ready only
 * when the server answering reports this child's process id; false when the child exited.
 */
async function waitReady(url: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      const info = await probe.info('server');
      probe.disconnect();
      if (Number(/process_id:(\d+)/.exec(info)?.[1]) === child.pid) return true;
      await sleep(50);
    } catch {
      probe.disconnect();
      await sleep(50);
    }
  }
  throw new Error(`redis at ${url} did not become ready`);
}

/**
 * `port`: start a server of the tests' own on that port (even when REDIS_URL is set), e.g. where a
 * store was first pointed at nothing, to bring Redis up under it.
 */
export async function startRedis(options: { port?: number } = {}): Promise<TestRedis> {
  const external = options.port === undefined ? process.env.REDIS_URL : undefined;
  if (external) {
    const port = Number(new URL(external).port || 6379);
    const noop = async () => {};
    return { url: external, port, restart: noop, kill: noop, stop: noop, pause() {}, resume() {} };
  }
  let port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  const launch = async () => {
    for (let attempt = 1; ; attempt++) {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      if (await waitReady(`redis://127.0.0.1:${port}`, child)) return;
      // Another process took the port first: a new one, unless the caller chose it (a restart
      // on the same port, a test that needs that very port).
      if (options.port !== undefined || attempt === 5)
        throw new Error(`redis-server could not listen on 127.0.0.1:${port}`);
      port = await freePort();
    }
  };
  const kill = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  await launch();
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => {
    if (child && child.exitCode === null) child.kill(name);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    // On the same port: the clients the tests made know it.
    restart: async () => {
      const chosen = port;
      child = spawn(
        'redis-server',
        ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      if (!(await waitReady(`redis://127.0.0.1:${chosen}`, child)))
        throw new Error(`redis-server could not listen again on 127.0.0.1:${chosen}`);
    },
    kill,
    stop: async () => {
      signal('SIGCONT'); // a stopped process is killed all the same, but let it go first
      await kill();
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}

/** A test file's Redis with what its tests open on it: see {@link redisTestBed}. */
export interface RedisTestBed {
  /** The file's server (started before its first test; unset when NO_REDIS). */
  readonly redis: TestRedis;
  /** ioredis clients the tests made: disconnected after the file. */
  readonly clients: Redis[];
  /** Keepers the tests made: closed after the file, before the server stops. */
  readonly keepers: Jailkeeper[];
}

/**
 * Starts a Redis of the file's own before its tests (none when redis-server is missing: the
 * suites skip with NO_REDIS), and after them closes the keepers and clients the tests pushed
 * and stops the server. Call it once, at the top of the file.
 */
export function redisTestBed(): RedisTestBed {
  let redis: TestRedis | undefined;
  const bed: RedisTestBed = {
    get redis() {
      return redis as TestRedis;
    },
    clients: [],
    keepers: [],
  };
  before(async () => {
    if (!NO_REDIS) redis = await startRedis();
  });
  after(async () => {
    await Promise.all(bed.keepers.map((k) => k.close()));
    for (const c of bed.clients) c.disconnect();
    await redis?.stop();
  });
  return bed;
}

/**
 * A Redis store's options for fault tests: the hot path's 100 ms deadline, and a probe and a
 * reconcile quick enough that a recovery shows within a test's patience.
 */
export const QUICK_STORE = { timeout: 100, probeInterval: 100, reconcileInterval: 200 } as const;

/** What Redis ran while a {@link monitorRedis} watched: each command's name and arguments. */
export interface RedisMonitor {
  /** Every command seen since MONITOR was on, as `[name, ...args]`, in Redis's order. */
  readonly commands: string[][];
  close(): void;
}

/** One argument of a MONITOR line, as Redis quotes it (`sdscatrepr`): `\\`, `\"`, `\n`, `\xHH`. */
function unquote(quoted: string): string {
  return quoted.replace(/\\(x[0-9a-f]{2}|.)/g, (_, c: string) =>
    c.length === 3
      ? String.fromCharCode(Number.parseInt(c.slice(1), 16))
      : (({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' } as Record<string, string>)[c] ?? c),
  );
}

/**
 * Watches every command Redis at `url` runs, on a socket of its own speaking MONITOR's replies
 * directly. ioredis's `monitor()` is not used: it switches its parser to monitoring only a
 * microtask after MONITOR's +OK, so a command Redis reports in the same read as the +OK (a busy
 * machine, a keeper's background work) reaches the parser as a reply to no command, and ioredis
 * emits "Command queue state error" on a connection the caller never saw: the test failed, and
 * the connection it could not close held the file open until its timeout.
 * Resolves once MONITOR is on.
 */
export async function monitorRedis(url: string): Promise<RedisMonitor> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port || 6379), hostname);
  socket.setEncoding('latin1');
  const commands: string[][] = [];
  let buffered = '';
  let on = false;
  const started = new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\r\n'); end !== -1; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!on) {
          if (line !== '+OK') return reject(new Error(`MONITOR answered ${line}`));
          on = true;
          resolve();
          continue;
        }
        // +1700000000.123456 [0 127.0.0.1:50000] "cmd" "arg" ... (arguments never hold a raw quote)
        const args = line.slice(line.indexOf('"')).match(/"(?:[^"\\]|\\.)*"/g) ?? [];
        commands.push(args.map((arg) => unquote(arg.slice(1, -1))));
      }
    });
  });
  socket.write('MONITOR\r\n');
  try {
    await started;
  } catch (error) {
    socket.destroy();
    throw error;
  }
  socket.on('error', () => {});
  return { commands, close: () => socket.destroy() };
}
