/**
 * Steering the failure judge (issue 27): each attacker of the issue against the `scanners` preset,
 * on Express 4 and 5 and Fastify 4 and 5 (over HTTP, the client address in X-Forwarded-For from a
 * trusted loopback proxy), on the memory store and on Redis shared by two instances taking turns,
 * and through `jailkeeper replay` on the same requests written as a log. (The attack matrix's
 * fleet apps count handler runs by socket address and serve no 404 routes; these need the
 * forwarded address, IPv6 networks among them, and an app route that answers 404.)
 * The ground truth is what ran: every handler, the app's not-found handler included, counts its
 * runs per client; an attacker is refused within the preset's bound when its failing handler runs
 * stay within it and its later requests run nothing.
 *
 * - IPv6 /45 poisoning: 8 /48s of one /45 (a new /64 every 9 paths) fail on 40 paths, half of them
 *   an app route's own 404s; then an IPv4 scanner walks the 40: banned at its 10th, as on paths
 *   nobody shared.
 * - An app route's own 404s (`/api/users/:id`) that 8 different /16s failed on: never shared, so
 *   the scanner enumerating them is banned at its 10th (live only: a log has no routes).
 * - Query guessing: 300 guesses at `GET /download?token=…` (a served route answering 404): banned
 *   at the 10th distinct guess.
 * - Probe spellings: each of 8 spellings of wp-login.php and xmlrpc.php: banned at the 2nd probe.
 * - The CMS-login botnet's three requests (/wp-login.php, /administrator/, /admin.php) in all 6
 *   orders: banned at the 2nd.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper, presets } from '@jailkeeper/core';
import { quietLogger, until } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { createRedisStore } from '@jailkeeper/redis';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Redis } from 'ioredis';
import { replay } from '../../packages/cli/src/replay.js';
import { startRedis, type TestRedis } from '../redis-server.js';

/** The one token /download accepts: the 250th guess. */
const SECRET = 'g249';
const CONFIG = { jails: { scanners: presets.scanners }, trustedProxies: ['loopback'] };
/** The scanners preset's bounds (docs/detection.md): 10 distinct failures, or 2 probes. */
const DISTINCT_BOUND = presets.scanners.maxRetry as number;
const PROBE_BOUND = Math.ceil(DISTINCT_BOUND / 5);

/** The 8 spellings of issue 27, each of a probe file name. */
const SPELLINGS: ReadonlyArray<readonly [string, (name: string) => string]> = [
  ['a percent-encoded letter', (n) => `/%${n.charCodeAt(0).toString(16)}${n.slice(1)}`],
  ['a backslash', (n) => `/\\${n}`],
  ['an encoded dot segment', (n) => `/%2e/${n}`],
  ['a dot-dot segment', (n) => `/x/../${n}`],
  ['a trailing dot', (n) => `/${n}.`],
  ['a trailing encoded space', (n) => `/${n}%20`],
  ['a ;param', (n) => `/${n};x`],
  ['a NUL', (n) => `/${n}%00`],
];

const CMS = ['/wp-login.php', '/administrator/', '/admin.php'];
const ORDERS = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];

/** One request of an attacker. */
interface Sent {
  readonly ip: string;
  readonly target: string;
}

/** Handler runs per client address: every route's, and the not-found handler's. */
class Runs {
  readonly #runs = new Map<string, number>();
  ran(ip: string): void {
    this.#runs.set(ip, (this.#runs.get(ip) ?? 0) + 1);
  }
  of(ip: string): number {
    return this.#runs.get(ip) ?? 0;
  }
}

interface Site {
  readonly port: number;
  close(): Promise<void>;
}

function userStatus(id: string): number {
  return id === '1' ? 200 : 404;
}

function expressSite(express: typeof express5): (keeper: Jailkeeper, runs: Runs) => Promise<Site> {
  return async (keeper, runs) => {
    const app = express();
    app.use(jailkeeper(keeper));
    const ip = (req: express5.Request) => String(req.headers['x-forwarded-for']);
    app.get('/api/users/:id', (req, res) => {
      runs.ran(ip(req));
      res.status(userStatus(req.params.id)).send('user');
    });
    app.get('/download', (req, res) => {
      runs.ran(ip(req));
      res.status(req.query.token === SECRET ? 200 : 404).send('file');
    });
    app.use((req: express5.Request, res: express5.Response) => {
      runs.ran(ip(req));
      res.status(404).send('not found');
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as { port: number }).port,
      close: async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  };
}

function fastifySite(fastify: typeof fastify5): (keeper: Jailkeeper, runs: Runs) => Promise<Site> {
  return async (keeper, runs) => {
    const app = fastify();
    await app.register(jailkeeperPlugin as never, { keeper });
    const ip = (req: { headers: Record<string, unknown> }) => String(req.headers['x-forwarded-for']);
    app.get('/api/users/:id', async (req, reply) => {
      runs.ran(ip(req));
      return reply.code(userStatus((req.params as { id: string }).id)).send('user');
    });
    app.get('/download', async (req, reply) => {
      runs.ran(ip(req));
      return reply.code((req.query as { token?: string }).token === SECRET ? 200 : 404).send('file');
    });
    app.setNotFoundHandler(async (req, reply) => {
      runs.ran(ip(req));
      return reply.code(404).send('not found');
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return {
      port: (app.server.address() as { port: number }).port,
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  };
}

const FRAMEWORKS = [
  { name: 'express 4', start: expressSite(express4 as unknown as typeof express5) },
  { name: 'express 5', start: expressSite(express5) },
  { name: 'fastify 4', start: fastifySite(fastify4 as unknown as typeof fastify5) },
  { name: 'fastify 5', start: fastifySite(fastify5) },
];

/** Sends one request as written (no client library rewrites the target), from `ip` behind the proxy. */
function send(port: number, r: Sent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: r.target, headers: { 'x-forwarded-for': r.ip, connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The attackers of the issue, each a list of requests; `bound`: the failing handler runs allowed. */
interface Attacker {
  readonly name: string;
  readonly ip: string;
  readonly requests: readonly Sent[];
  readonly bound: number;
  /** Requests sent before the attacker's own (the /45's poisoning), from other addresses. */
  readonly before?: readonly Sent[];
  /** Why the row does not run through replay (a log has no router information), if it does not. */
  readonly liveOnly?: string;
}

function attackers(): Attacker[] {
  const list: Attacker[] = [];
  const paths = [
    ...Array.from({ length: 20 }, (_, i) => `/old-${i}.html`),
    ...Array.from({ length: 20 }, (_, i) => `/api/users/${100 + i}`),
  ];
  const poison: Sent[] = [];
  let n = 0;
  for (let net = 0; net < 8; net++) {
    for (const target of paths) {
      poison.push({ ip: `2001:db8:${net.toString(16)}:${Math.floor(n++ / 9).toString(16)}::1`, target });
    }
  }
  list.push({
    name: 'an IPv4 scanner after one IPv6 /45 failed on its 40 paths',
    ip: '198.51.100.10',
    before: poison,
    requests: paths.map((target) => ({ ip: '198.51.100.10', target })),
    bound: DISTINCT_BOUND,
  });
  const routed = Array.from({ length: 20 }, (_, i) => `/api/users/${200 + i}`);
  list.push({
    name: "an IPv4 scanner enumerating /api/users/:id after 8 /16s failed there (an app route's 404s)",
    ip: '198.51.100.11',
    before: routed.flatMap((target) =>
      Array.from({ length: 8 }, (_, k) => ({ ip: `100.${64 + k}.0.1`, target })),
    ),
    requests: routed.map((target) => ({ ip: '198.51.100.11', target })),
    bound: DISTINCT_BOUND,
    liveOnly:
      'a log says nothing of routes: in a replay a 404 path that 8 /16s fail on is shared, whatever answered it',
  });
  list.push({
    name: 'a token guesser: 300 guesses at /download?token=',
    ip: '198.51.100.20',
    requests: Array.from({ length: 300 }, (_, i) => ({
      ip: '198.51.100.20',
      target: `/download?token=g${i}`,
    })),
    bound: DISTINCT_BOUND,
  });
  for (const [k, [how, spell]] of SPELLINGS.entries()) {
    const ip = `198.51.101.${k + 1}`;
    const names = ['wp-login.php', 'xmlrpc.php', 'wp-config.php', '.env', 'phpinfo.php'];
    list.push({
      name: `probes spelt with ${how} (${spell('wp-login.php')})`,
      ip,
      requests: names.map((name) => ({ ip, target: spell(name) })),
      bound: PROBE_BOUND,
    });
  }
  for (const [k, order] of ORDERS.entries()) {
    const ip = `198.51.102.${k + 1}`;
    list.push({
      name: `the CMS-login botnet in the order ${order.map((i) => CMS[i]).join(', ')}`,
      ip,
      requests: order.map((i) => ({ ip, target: CMS[i] as string })),
      bound: PROBE_BOUND,
    });
  }
  return list;
}

const ATTACKERS = attackers();

/** Where the counts are kept: the memory store (one instance), or Redis shared by two instances taking turns. */
const STORES = [
  { name: 'memory store', instances: 1 },
  { name: 'Redis, 2 instances', instances: 2 },
] as const;

let redis: Promise<TestRedis> | undefined;
let prefixes = 0;
after(async () => {
  if (redis !== undefined) await (await redis).stop();
});

async function keepers(instances: number): Promise<{ keepers: Jailkeeper[]; close(): Promise<void> }> {
  const options = { ...CONFIG, logger: quietLogger, closeConnectionsOnBan: false };
  if (instances === 1) {
    const keeper = createJailkeeper(options);
    return { keepers: [keeper], close: () => keeper.close() };
  }
  redis ??= startRedis();
  const { url } = await redis;
  const prefix = `jkevade${process.pid}-${prefixes++}:`;
  const clients = Array.from({ length: instances }, () => new Redis(url, { maxRetriesPerRequest: 1 }));
  const list = clients.map((client) =>
    createJailkeeper({ ...options, store: createRedisStore({ client, prefix, timeout: 2000 }) }),
  );
  await Promise.all(list.map((k) => k.ready));
  return {
    keepers: list,
    async close() {
      await Promise.all(list.map((k) => k.close()));
      await Promise.all(clients.map((c) => c.quit()));
    },
  };
}

for (const framework of FRAMEWORKS) {
  for (const store of STORES) {
    describe(`steering the judge, ${framework.name}, ${store.name}: each attacker refused within the scanners preset's bound`, () => {
      for (const attacker of ATTACKERS) {
        it(`${attacker.name}: at most ${attacker.bound} failing handler runs`, async () => {
          const fleet = await keepers(store.instances);
          const runs = new Runs();
          const sites: Site[] = [];
          try {
            for (const keeper of fleet.keepers) sites.push(await framework.start(keeper, runs));
            let turn = 0;
            // The instances take turns, as behind a round-robin balancer.
            const next = (r: Sent) => send((sites[turn++ % sites.length] as Site).port, r);
            const idle = () => Promise.all(fleet.keepers.map((k) => k.idle()));
            for (const r of attacker.before ?? []) {
              await next(r);
              await idle();
            }
            for (const keeper of fleet.keepers) {
              assert.deepEqual(keeper.brokenLinks(), [], 'no path of the attack became shared');
            }
            const statuses: number[] = [];
            for (const r of attacker.requests) {
              statuses.push(await next(r));
              await idle();
            }
            const ran = runs.of(attacker.ip);
            assert.ok(ran <= attacker.bound, `${ran} handler runs; answers ${statuses.join(' ')}`);
            assert.ok(ran >= 1, 'the attack reached the app');
            await until(() => fleet.keepers.every((k) => k.check(attacker.ip).banned), {
              within: 3000,
              what: 'the ban on every instance',
            });
            assert.ok(!statuses.includes(200), 'the secret was never found');
          } finally {
            await Promise.all(sites.map((site) => site.close()));
            await fleet.close();
          }
        });
      }
    });
  }
}

/** A combined-format line of `r`, answered as the site above answers it. */
function logLine(r: Sent, atMs: number): string {
  const path = r.target.split('?')[0] as string;
  const token = new URLSearchParams(r.target.split('?')[1] ?? '').get('token');
  const status = path.startsWith('/api/users/') ? userStatus(path.slice(11)) : token === SECRET ? 200 : 404;
  const time = new Date(atMs)
    .toUTCString()
    .replace(/^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/, '$1/$2/$3:$4 +0000');
  return `${r.ip} - - [${time.padStart(26, '0')}] "GET ${r.target} HTTP/1.1" ${status} 153 "-" "scanner"`;
}

describe('steering the judge, through jailkeeper replay: each attacker banned within its bound', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jk-evasion-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const attacker of ATTACKERS) {
    it(`${attacker.name}: banned at a failure within ${attacker.bound}`, {
      skip: attacker.liveOnly,
    }, async () => {
      const sent = [...(attacker.before ?? []), ...attacker.requests];
      const start = Date.UTC(2026, 2, 2, 8);
      const file = join(dir, `${attacker.ip}.log`);
      await writeFile(file, `${sent.map((r, i) => logLine(r, start + i * 100)).join('\n')}\n`);
      const report = await replay(file, { jails: { scanners: presets.scanners } } as Record<string, unknown>);
      const ban = report.bans.find((b) => b.ip === attacker.ip);
      assert.ok(ban, `banned; bans: ${report.bans.map((b) => b.ip).join(', ')}`);
      const own = ban.line - (attacker.before?.length ?? 0);
      assert.ok(own >= 1 && own <= attacker.bound, `banned at its request ${own}`);
      assert.deepEqual(report.brokenLinks, [], 'no path of the attack became shared');
    });
  }
});
