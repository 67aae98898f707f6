/**
 * A Redis for the tests: REDIS_URL when set, else a redis-server started on a free port (and
 * stopped by `stop()`; a server the tests did not start is never stopped).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

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

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return;
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
  const port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    await waitReady(`redis://127.0.0.1:${port}`);
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
    restart: launch,
    kill,
    stop: async () => {
      signal('SIGCONT'); // a stopped process is killed all the same, but let it go first
      await kill();
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}
