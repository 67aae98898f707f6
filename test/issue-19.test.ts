/**
 * Issue 19: ban the scanner, not the reader. A day of a small site's traffic (test/traffic/) runs
 * through real adapters (Express and Fastify, over HTTP through supertest) with the presets, and
 * through `jailkeeper replay` as a generated access log. The ground truth is what reached the app
 * (a middleware after jailkeeper counts each client's requests), never what jailkeeper says.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { createManualClock } from '@jailkeeper/core/operator';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import express from 'express';
import Fastify from 'fastify';
import request from 'supertest';
import { replay } from '../packages/cli/src/replay.js';
import {
  ASSETS,
  GUESSES,
  logLine,
  MISSING_FONTS,
  NAIVE_CONFIG,
  PAGES,
  PRESET_CONFIG,
  PROBES,
  presetConfigModule,
  type Request,
  siteTraffic,
  statusOf,
} from './traffic/site-traffic.js';

const traffic = siteTraffic();
const readers = traffic.clients.filter((c) => c.kind !== 'scanner');
const scanners = traffic.clients.filter((c) => c.kind === 'scanner');
const TALK_READER = '93.184.77.21';
/** The pages and assets the site serves, one route each (the posts have a route of their own). */
const PAGE_ROUTES = [...PAGES, ...ASSETS].filter((p) => !p.startsWith('/posts/'));

/** What reached the app, per client: every request, and the failing ones. */
interface Reached {
  all: Map<string, number>;
  failing: Map<string, number>;
}

function count(map: Map<string, number>, ip: string): void {
  map.set(ip, (map.get(ip) ?? 0) + 1);
}

function keeperFor(clock: ReturnType<typeof createManualClock>): Jailkeeper {
  return createJailkeeper({
    ...PRESET_CONFIG,
    clock,
    logger: quietLogger,
    trustedProxies: ['loopback'],
    closeConnectionsOnBan: false,
    attempts: { wait: 0 },
  });
}

/** The site on Express: routes for pages, posts, assets, the admin pages and the sign-in. */
function expressSite(keeper: Jailkeeper, reached: Reached): Server {
  const app = express();
  app.use(jailkeeper(keeper));
  app.use((req, _res, next) => {
    const ip = String(req.headers['x-forwarded-for']);
    count(reached.all, ip);
    if (statusOf(req.method, req.path, req.headers['x-ok'] === '1') >= 400) count(reached.failing, ip);
    next();
  });
  app.get('/posts/:id', (req, res) => {
    res.status(statusOf('GET', req.path)).send('post');
  });
  app.all('/admin{/*rest}', (_req, res) => {
    res.status(403).send('forbidden');
  });
  app.post('/login', (req, res) => {
    res.status(req.headers['x-ok'] === '1' ? 200 : 401).end();
  });
  for (const path of PAGE_ROUTES) {
    app.get(path, (_req, res) => {
      res.send('page');
    });
  }
  return app.listen(0, '127.0.0.1');
}

async function fastifySite(keeper: Jailkeeper, reached: Reached) {
  const app = Fastify();
  await app.register(jailkeeperPlugin, { keeper });
  app.addHook('onRequest', async (req) => {
    const ip = String(req.headers['x-forwarded-for']);
    count(reached.all, ip);
    const path = req.url.split('?')[0] as string;
    if (statusOf(req.method, path, req.headers['x-ok'] === '1') >= 400) count(reached.failing, ip);
  });
  app.get('/posts/:id', async (req, reply) => reply.code(statusOf('GET', req.url)).send('post'));
  app.all('/admin', async (_req, reply) => reply.code(403).send('forbidden'));
  app.all('/admin/*', async (_req, reply) => reply.code(403).send('forbidden'));
  app.post('/login', async (req, reply) => reply.code(req.headers['x-ok'] === '1' ? 200 : 401).send());
  for (const path of [
    '/',
    '/about',
    '/talks',
    '/talks/node-security',
    '/css/site.css',
    '/js/site.js',
    '/img/logo.png',
    '/js/deck.js',
  ]) {
    app.get(path, async () => 'page');
  }
  await app.ready();
  return app;
}

/** Sends one request of the day through supertest, from its client (behind the trusted proxy). */
function over(agent: ReturnType<typeof request>): (r: Request) => Promise<number> {
  return async (r) => {
    const res = await (r.method === 'POST' ? agent.post(r.path) : agent.get(r.path))
      .set('X-Forwarded-For', r.ip)
      .set('User-Agent', r.ua)
      .set('x-ok', r.ok ? '1' : '0');
    return res.status;
  };
}

/** The day through one adapter, in order, with the clock at each request's time. */
async function run(
  send: (r: Request) => Promise<number>,
  clock: ReturnType<typeof createManualClock>,
  keeper: Jailkeeper,
): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  for (const r of traffic.requests) {
    clock.set(r.timeMs);
    count(sent, r.ip);
    await send(r);
    await keeper.idle();
  }
  return sent;
}

function assertVerdicts(reached: Reached, sent: Map<string, number>, who: string): void {
  // Refused: sent, and never reached the app.
  const refused = new Map([...sent].map(([ip, n]) => [ip, n - (reached.all.get(ip) ?? 0)]));
  for (const reader of readers) {
    assert.equal(refused.get(reader.ip) ?? 0, 0, `${who}: ${reader.name} (${reader.ip}) is never refused`);
  }
  for (const scanner of scanners) {
    const failing = reached.failing.get(scanner.ip) ?? 0;
    const all = reached.all.get(scanner.ip) ?? 0;
    const answered = scanner.bannedBy === 'badBots' ? all : failing;
    assert.ok(
      answered <= (scanner.within as number),
      `${who}: ${scanner.name} got ${answered} requests answered; the ${scanner.bannedBy} preset bans within ${scanner.within}`,
    );
    assert.ok((refused.get(scanner.ip) ?? 0) > 0, `${who}: ${scanner.name} is refused after its ban`);
  }
}

function assertBrokenLinks(links: Set<string>): void {
  for (const font of MISSING_FONTS) assert.ok(links.has(font), `${font} became a broken link`);
  assert.ok(links.has('/favicon.ico'));
  for (const path of [...PROBES, ...GUESSES]) {
    assert.ok(!links.has(path), `${path}: an attacker's path never becomes shared`);
  }
}

describe('issue 19: the presets on a day of traffic, through real adapters', () => {
  it('Express (supertest): every scanner banned within its preset’s bound, no reader refused', async () => {
    const clock = createManualClock(traffic.requests[0]?.timeMs ?? 0);
    const keeper = keeperFor(clock);
    const links = new Set<string>();
    keeper.on('brokenLink', (l) => links.add(l.path));
    const reached: Reached = { all: new Map(), failing: new Map() };
    const server = expressSite(keeper, reached);
    const agent = request(server);
    try {
      const sent = await run(over(agent), clock, keeper);
      assertVerdicts(reached, sent, 'express');
      assertBrokenLinks(links);
    } finally {
      server.close();
      await keeper.close();
    }
  });

  // Over HTTP like the Express run (inject is covered by test/fastify-inject.test.ts).
  it('Fastify (over HTTP): the same', async () => {
    const clock = createManualClock(traffic.requests[0]?.timeMs ?? 0);
    const keeper = keeperFor(clock);
    const links = new Set<string>();
    keeper.on('brokenLink', (l) => links.add(l.path));
    const reached: Reached = { all: new Map(), failing: new Map() };
    const app = await fastifySite(keeper, reached);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const agent = request(app.server);
    try {
      const sent = await run(over(agent), clock, keeper);
      assertVerdicts(reached, sent, 'fastify');
      assertBrokenLinks(links);
    } finally {
      await app.close();
      await keeper.close();
    }
  });
});

describe('issue 19: jailkeeper replay on the generated log', () => {
  let dir: string;
  let log: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jk-issue-19-'));
    log = join(dir, 'access.log');
    await writeFile(log, `${traffic.requests.map(logLine).join('\n')}\n`);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('the presets ban every scanner at its bound and no reader; each ban shows its evidence and the client', async () => {
    const report = await replay(log, PRESET_CONFIG as unknown as Record<string, unknown>);
    const banned = new Map(report.bans.map((b) => [b.ip, b]));
    for (const reader of readers) assert.ok(!banned.has(reader.ip), `${reader.name} is not banned`);
    for (const scanner of scanners) {
      const ban = banned.get(scanner.ip);
      assert.ok(ban, `${scanner.name} is banned`);
      assert.equal(ban.jail, scanner.bannedBy, scanner.name);
      assert.ok(ban.evidence.length >= 1 && ban.evidence.length <= (scanner.within as number));
      assert.equal(ban.evidence.at(-1)?.line, ban.line, 'the last evidence line is the one that banned');
      assert.equal(ban.looksLegitimate, false, `${scanner.name} does not look like a reader`);
    }
    const probeScanner = banned.get('45.148.10.81');
    assert.deepEqual(
      probeScanner?.evidence.map((e) => e.probe),
      [true, true],
      'two probes ban (each weighs 5 of the 10)',
    );
    assert.equal(probeScanner?.profile?.userAgent, 'Mozilla/5.0 zgrab/0.x');
    assert.ok((report.jails.scanners?.repeated ?? 0) > 0, 'a browser’s repeated fonts count once');
    const links = new Set(report.brokenLinks.map((l) => l.path));
    for (const font of MISSING_FONTS) assert.ok(links.has(font));
    for (const path of [...PROBES, ...GUESSES]) assert.ok(!links.has(path));
  });

  it('the jail fail2ban users copy (404 × 5 in 10m) bans the reader of the talk, and replay flags it', async () => {
    const report = await replay(log, NAIVE_CONFIG as unknown as Record<string, unknown>);
    const talk = report.bans.filter((b) => b.ip === TALK_READER);
    assert.ok(talk.length > 0, 'the naive jail bans the reader with the broken fonts');
    assert.ok(
      talk.every((b) => b.looksLegitimate),
      'every such ban is flagged as a legitimate visitor',
    );
    const probeScanner = report.bans.find((b) => b.ip === '45.148.10.81');
    assert.equal(probeScanner?.looksLegitimate, false);
  });

  it('the command: --explain tells one client’s story; the text shows evidence and broken links', async () => {
    const config = join(dir, 'jailkeeper.config.mjs');
    const core = pathToFileURL(
      fileURLToPath(new URL('../packages/core/dist/index.js', import.meta.url)),
    ).href;
    await writeFile(config, presetConfigModule(core));
    const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
    const res = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [bin, 'replay', log, '--config', config, '--no-progress', '--explain', TALK_READER],
        { maxBuffer: 16 << 20 },
        (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '', 'broken links are in the report, not warnings on stderr');
    assert.match(res.stdout, /^45\.148\.10\.81 banned in scanners for 1h at \S+ \(line \d+\)$/m);
    assert.match(res.stdout, /^ {3}line \d+: GET \/wp-login\.php 404 {2}\(probe\)$/m);
    assert.match(res.stdout, /^Broken links \(/m);
    assert.match(res.stdout, /^ {2}\/fonts\/deck-regular\.woff2 {2}in scanners: 8 networks/m);
    assert.match(res.stdout, /^The story of 93\.184\.77\.21:$/m);
    assert.match(
      res.stdout,
      /GET \/fonts\/deck-bold\.woff2 404 {2}-> scanners: not counted \(the same failing path again\)/,
    );
    assert.doesNotMatch(res.stdout, /^93\.184\.77\.21 banned/m);
  });
});
