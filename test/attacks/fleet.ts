/**
 * The apps the attack matrix runs against: one real login app per framework (a body parser, an
 * async password check, a delay), deployed on one of the stores (the memory store on one instance,
 * or Redis shared by several instances in this process, each with its own ioredis client).
 * The handlers count their own runs per client address: that count is the ground truth.
 */
import { once } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createJailkeeper,
  type Jailkeeper,
  type JailkeeperOptions,
  type JailOptions,
} from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { createRedisStore } from '@jailkeeper/redis';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../redis-server.js';

/** The password the login handlers accept. */
export const PASSWORD = 'correct horse battery staple';
/**
 * How long the password check takes (an async hash compare, as bcrypt would): 40 ms, or
 * `JK_FLEET_CHECK_MS` (the process fleet's workers use 80, as issue 25 measured).
 */
export const CHECK_MS = Number(process.env.JK_FLEET_CHECK_MS ?? 40);

/** The jail of the matrix, as issue 12 states it. */
export const LOGIN_JAIL: JailOptions & { maxRetry: number } = {
  statuses: [401],
  paths: ['/login'],
  methods: ['POST'],
  maxRetry: 5,
};

/**
 * What the handlers saw, shared by every instance of a fleet: runs per client address, and the
 * requests each instance received (to wait until every one of them is decided).
 */
class Probe {
  /** Handler runs (password checks) by client address. */
  readonly runs = new Map<string, number>();
  /** Handler runs of every route, by client address and route. */
  readonly hits = new Map<string, number>();
  /** When each client's last login handler run started (performance.now()). */
  readonly enteredAt = new Map<string, number>();
  readonly #entered = new WeakSet<IncomingMessage>();
  /** Each request's client address, read when it arrives (a closed socket no longer has one). */
  readonly #from = new WeakMap<IncomingMessage, string>();
  readonly #received = new Set<{ req: IncomingMessage; res: ServerResponse }>();
  readonly #receivedFrom = new Map<string, number>();

  /** Counts a run of the login handler. */
  login(req: IncomingMessage): void {
    const client = this.#clientOf(req);
    this.#entered.add(req);
    this.runs.set(client, (this.runs.get(client) ?? 0) + 1);
    this.enteredAt.set(client, performance.now());
  }

  /** Counts a run of any other handler. */
  hit(req: IncomingMessage, route: string): void {
    this.#entered.add(req);
    const key = `${this.#clientOf(req)} ${route}`;
    this.hits.set(key, (this.hits.get(key) ?? 0) + 1);
  }

  #clientOf(req: IncomingMessage): string {
    const client = this.#from.get(req);
    if (client === undefined) throw new Error('a request the probe did not see arrive');
    return client;
  }

  runsOf(client: string): number {
    return this.runs.get(client) ?? 0;
  }

  /** Requests the servers received from `client` (parsed, whatever became of them). */
  receivedFrom(client: string): number {
    return this.#receivedFrom.get(client) ?? 0;
  }

  hitsOf(client: string, route: string): number {
    return this.hits.get(`${client} ${route}`) ?? 0;
  }

  /** Watches a server's requests (before the framework's own listener runs them). */
  watch(server: Server): void {
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      const entry = { req, res };
      this.#received.add(entry);
      const client = req.socket.remoteAddress ?? '?';
      this.#from.set(req, client);
      this.#receivedFrom.set(client, (this.#receivedFrom.get(client) ?? 0) + 1);
      res.once('close', () => {
        if (this.#decided(entry)) this.#received.delete(entry);
      });
    });
  }

  #decided(entry: { req: IncomingMessage; res: ServerResponse }): boolean {
    return this.#entered.has(entry.req) || entry.res.writableEnded;
  }

  /** The fleet's keepers: their `attempts().admitting` is what waits for admission. */
  readonly keepers: Jailkeeper[] = [];

  /** Attempts waiting for admission, in every keeper (`keeper.attempts()`). */
  get admitting(): number {
    let n = 0;
    for (const keeper of this.keepers) n += keeper.attempts().admitting;
    return n;
  }
  /** Every reservation a store answered, by client: whether it was admitted (false: a wait or a refusal). */
  readonly reservations = new Map<string, boolean[]>();

  /**
   * Waits until every request the servers received has been decided: its handler ran, or an answer
   * was written (a refusal written to a client that left is still written), or its client left and
   * no attempt is still waiting for admission (a framework may drop such a request unanswered).
   * Attempts that wait for a slot are decided when one frees or their wait ends: this is what the
   * assertions must wait for.
   */
  async decided(withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      for (const entry of this.#received) if (this.#decided(entry)) this.#received.delete(entry);
      if (this.admitting === 0) {
        for (const entry of this.#received) if (entry.req.socket.destroyed) this.#received.delete(entry);
      }
      if (this.#received.size === 0) return;
      if (Date.now() > deadline) {
        const left = [...this.#received].map(
          (e) => `${e.req.method} ${e.req.url} from ${this.#clientOf(e.req)}`,
        );
        throw new Error(`${left.length} requests still undecided after ${withinMs} ms: ${left.slice(0, 5)}`);
      }
      await sleep(5);
    }
  }
}

/** The async password check every login handler awaits: a delay, then a constant-time compare. */
async function checkPassword(password: unknown): Promise<boolean> {
  await sleep(CHECK_MS);
  return typeof password === 'string' && password === PASSWORD;
}

interface Instance {
  readonly port: number;
  readonly keeper: Jailkeeper;
  /** The instance's own Redis client, when the store is Redis (a test may watch its reconnections). */
  readonly redis?: Redis;
}

export interface Framework {
  readonly name: string;
  /** Serves the app on 127.0.0.1; resolves to its port and a close function. */
  serve(keeper: Jailkeeper, probe: Probe): Promise<{ port: number; close(): Promise<void> }>;
}

function expressApp(name: string, express: typeof express5): Framework {
  return {
    name,
    async serve(keeper, probe) {
      const app = express();
      app.use(jailkeeper(keeper));
      // The body parser at the route, as Fastify's runs after onRequest: the body is read only
      // once the attempt is admitted (the harder case: a parser's 400 frees a slot).
      app.post('/login', express.json(), async (req, res) => {
        probe.login(req);
        const ok = await checkPassword((req.body as { password?: unknown } | undefined)?.password);
        res.status(ok ? 200 : 401).json({ ok });
      });
      app.get('/assets/:name', (req, res) => {
        probe.hit(req, 'assets');
        res.type('text/javascript').send(`// ${req.params.name}`);
      });
      app.get('/admin', async (req, res) => {
        probe.hit(req, 'admin');
        await sleep(CHECK_MS); // a permission check
        res.status(403).json({ error: 'forbidden' });
      });
      // Quiet errors (a body its client abandoned, invalid JSON): Express's default handler logs them.
      app.use(
        (error: { status?: number }, _req: express5.Request, res: express5.Response, _next: unknown) => {
          res.status(error.status ?? 500).end();
        },
      );
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      probe.watch(server);
      return {
        port: (server.address() as { port: number }).port,
        async close() {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    },
  };
}

function fastifyApp(name: string, fastify: typeof fastify5): Framework {
  return {
    name,
    async serve(keeper, probe) {
      const app = fastify();
      await app.register(jailkeeperPlugin as never, { keeper });
      app.post('/login', async (req, reply) => {
        probe.login(req.raw);
        const ok = await checkPassword((req.body as { password?: unknown } | undefined)?.password);
        reply.code(ok ? 200 : 401);
        return { ok };
      });
      app.get('/assets/:name', async (req, reply) => {
        probe.hit(req.raw, 'assets');
        reply.type('text/javascript');
        return `// ${(req.params as { name: string }).name}`;
      });
      app.get('/admin', async (req, reply) => {
        probe.hit(req.raw, 'admin');
        await sleep(CHECK_MS); // a permission check
        reply.code(403);
        return { error: 'forbidden' };
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      probe.watch(app.server);
      return {
        port: (app.server.address() as { port: number }).port,
        async close() {
          app.server.closeAllConnections();
          await app.close();
        },
      };
    },
  };
}

export const FRAMEWORKS: readonly Framework[] = [
  expressApp('express 4', express4 as unknown as typeof express5),
  expressApp('express 5', express5),
  fastifyApp('fastify 4', fastify4 as unknown as typeof fastify5),
  fastifyApp('fastify 5', fastify5),
];

/** A store row of the matrix: the memory store (one instance), or Redis shared by `instances`. */
export interface StoreKind {
  readonly name: string;
  readonly redis: boolean;
  readonly instances: number;
}

export const STORES: readonly StoreKind[] = [
  { name: 'memory store', redis: false, instances: 1 },
  { name: 'Redis, 2 instances', redis: true, instances: 2 },
  { name: 'Redis, 3 instances', redis: true, instances: 3 },
];

/** How many times each Redis row runs (`JK_ATTACK_REPEAT`, default 50, as issue 12 requires). */
export const REDIS_REPEAT = positiveInt('JK_ATTACK_REPEAT', 50);
/** How many times each memory-store row runs (`JK_ATTACK_REPEAT_MEMORY`, default 5). */
export const MEMORY_REPEAT = positiveInt('JK_ATTACK_REPEAT_MEMORY', 5);
/** How many repetitions of a row run side by side, each from its own attacker (`JK_ATTACK_AT_ONCE`, default 1). */
export const AT_ONCE = positiveInt('JK_ATTACK_AT_ONCE', 1);

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer; got ${raw}`);
  return value;
}

/** A deployed app: its instances, the shared probe, and how to stop it all. */
export interface Fleet {
  readonly instances: readonly Instance[];
  readonly probe: Probe;
  /** True when a ban of `client` is enforced by every instance. */
  bannedEverywhere(client: string): boolean;
  /** Waits until every request the servers received is decided (see `Probe.decided`). */
  settle(withinMs?: number): Promise<void>;
  /** Waits until every keeper is idle: every admitted response counted, every store call done. */
  idle(withinMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Counts the attempts waiting in the keeper's admission (`AdapterKit.admit()`), so that the probe knows when a request whose
 * client left can no longer reach its handler. For waiting only: assertions count handler runs.
 */
function countAdmissions(keeper: Jailkeeper, probe: Probe): void {
  probe.keepers.push(keeper);
  const store = keeper.store;
  const reserve = store.reserve?.bind(store);
  if (reserve === undefined) return;
  store.reserve = async (rule, client, id, holdMs) => {
    const answer = await reserve(rule, client, id, holdMs);
    const log = probe.reservations.get(client) ?? [];
    log.push(answer.admitted);
    probe.reservations.set(client, log);
    return answer;
  };
}

let redisServer: Promise<TestRedis> | undefined;
let redisUsers = 0;
let fleets = 0;

/**
 * Deploys `framework` on `store` with `options` (the jails); one Redis server is shared per process.
 * `redisOptions`: the key prefix (instances in other processes share it) and the store's deadline
 * (2 s unless set: the in-process matrix is about the bound with Redis up, not about an outage).
 */
export async function deploy(
  framework: Framework,
  store: StoreKind,
  options: Omit<JailkeeperOptions, 'store' | 'logger'>,
  redisOptions: { prefix?: string; timeoutMs?: number } = {},
): Promise<Fleet> {
  const probe = new Probe();
  const prefix = redisOptions.prefix ?? `jkatk${process.pid}-${fleets++}:`;
  let redis: TestRedis | undefined;
  if (store.redis) {
    redisUsers++;
    redisServer ??= startRedis();
    redis = await redisServer;
  }
  const clients: Redis[] = [];
  const instances: Instance[] = [];
  const closers: Array<() => Promise<void>> = [];
  for (let i = 0; i < store.instances; i++) {
    let keeper: Jailkeeper;
    let client: Redis | undefined;
    if (redis !== undefined) {
      client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      clients.push(client);
      keeper = createJailkeeper({
        ...options,
        store: createRedisStore({ client, prefix, timeout: redisOptions.timeoutMs ?? 2000 }),
        logger: quietLogger,
      });
    } else keeper = createJailkeeper({ ...options, logger: quietLogger });
    await keeper.ready;
    countAdmissions(keeper, probe);
    const served = await framework.serve(keeper, probe);
    instances.push(
      client === undefined ? { port: served.port, keeper } : { port: served.port, keeper, redis: client },
    );
    closers.push(served.close);
  }
  return {
    instances,
    probe,
    bannedEverywhere(client) {
      return instances.every((i) => i.keeper.check(client).banned);
    },
    settle(withinMs = 10_000) {
      return probe.decided(withinMs);
    },
    async idle(withinMs = 5000) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`a keeper was not idle after ${withinMs} ms: a response never counted`)),
          withinMs,
        );
      });
      try {
        await Promise.race([Promise.all(instances.map((i) => i.keeper.idle())), late]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await Promise.all(closers.map((close) => close()));
      await Promise.all(instances.map((i) => i.keeper.close()));
      await Promise.all(clients.map((c) => c.quit()));
      if (redis !== undefined && --redisUsers === 0) {
        redisServer = undefined;
        await redis.stop();
      }
    },
  };
}
