// test-run: alone (it times recovery and clean logins against the issue's bounds)
/**
 * Healing from data loss with the instances in separate processes (issue 25): three Express login
 * apps (test/fixtures/recovery-app.mjs), each in its own process with its own event loop and its
 * own ioredis client, set up as the Redis README sets it up, on one Redis that holds N bans
 * (100,000, then 20,000) of loopback addresses. Steady traffic throughout, over loopback: clean
 * logins from 127.0.0.1 to every instance (their latency measured here, by the client), and
 * logins from banned addresses (whose handler must never run). Faults: FLUSHALL, kill -9 and a
 * restart empty on the same port, SHUTDOWN NOSAVE and a restart on the same port. After each:
 * - every ban back in Redis, each key with an expiry, and every ban enforced by every instance,
 *   within 2 s of Redis answering (1 s at 20,000 bans): the issue's bound (a todo while it is
 *   not met; whole within 30 s is asserted). When no instance dropped a seeded ban meanwhile
 *   (its unban events), they enforced every ban all along and the fleet was whole when Redis was;
 *   each instance's check of every ban confirms it once the traffic has ended (not while the clean
 *   logins are timed: 100,000 checks on each of three instances took the machine for a second).
 *   When one did drop a seeded ban, the fleet is whole when that check passes, asked at once;
 * - no clean login slower than 200 ms (measured by the client; those open at the fault or after
 *   it: the 2 s of traffic before it are printed apart, as what the machine does without a
 *   heal), none refused;
 * - new attackers (20 guesses pipelined to each instance) at most maxRetry handler runs in all,
 *   counted by the handlers; no banned address ever reached a handler;
 * - no instance reported Redis down once it answered (FLUSHALL: not at all, unless the FLUSHALL
 *   itself held Redis past the store's deadline, as it does on a loaded machine).
 *
 * Long (a few minutes): it runs when JK_LONG_TESTS is set (.ci/run sets it). JK_RECOVERY_FLEET_BANS
 * changes the sizes (a comma-separated list; default "100000,20000"). JK_DEBUG_HEAL=1 prints where
 * the time went (Redis' commandstats and slow log, each slow clean login's time in the app and in
 * store.reserve beside the event-loop delays); JK_FLEET_CPU_PROF=<dir> profiles each instance from the fault until whole
 * (a .cpuprofile per fault and instance).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freshClient, pipelined } from './attacks/traffic.js';
import { holdsBanOf, seedBans } from './redis-bans.js';
import { freePort, startRedis, type TestRedis } from './redis-server.js';
import { TcpProxy } from './tcp-proxy.js';

const LONG = process.env.JK_LONG_TESTS !== undefined && process.env.JK_LONG_TESTS !== '';
const SIZES = (process.env.JK_RECOVERY_FLEET_BANS ?? '100000,20000').split(',').map(Number);
const INSTANCES = 3;
const MAX_RETRY = 5;
const PASSWORD = 'correct horse battery staple';
const CLEAN_MS = 200;
/** Traffic before each fault, for the control figure (clean logins without a heal). */
const CONTROL_MS = 2000;
const app = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'recovery-app.mjs');

/** The i-th banned client (as recovery-app.mjs counts them): 127.250.0.0 and up, clear of freshClient()'s. */
const seededClient = (i: number) => `127.${250 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

interface Answer {
  error?: string;
  degraded?: boolean;
  connected?: boolean;
  readyAt?: number[];
  downs?: { at: number; reason: string }[];
  enforced?: number;
  runs?: number[] | number;
  lag?: number;
  unbans?: number;
  logins?: [number, number, number][];
  delays?: [number, number][];
}

/** One app instance in its own process. */
class Instance {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (answer: Answer) => void>();
  #next = 0;
  readonly port: Promise<number>;

  constructor(url: string, prefix: string) {
    this.#child = fork(app, [url, prefix], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.port = new Promise((resolve, reject) => {
      this.#child.once('exit', (code) => reject(new Error(`instance exited (${code}) before it was ready`)));
      this.#child.on('message', (m: Answer & { ready?: boolean; port?: number; id?: number }) => {
        if (m.ready) return resolve(m.port as number);
        this.#pending.get(m.id as number)?.(m);
        this.#pending.delete(m.id as number);
      });
    });
  }

  async ask(message: Record<string, unknown>): Promise<Answer> {
    const id = this.#next++;
    const answer = await new Promise<Answer>((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.send({ ...message, id });
    });
    assert.equal(answer.error, undefined, answer.error);
    return answer;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.send({ op: 'exit', id: -1 });
    await exited;
  }
}

/**
 * Bans held in the shards of `prefix`, and keys of the prefix without an expiry: a Lua call per
 * 128 shards, one after the other. In one call over the 1,024 shards it held Redis 5 to 10 ms
 * (30 to 100 ms at load 9 to 13) every 100 ms, and a clean login's reservation waited behind it:
 * the test slowed what it measures.
 */
async function contents(admin: Redis, prefix: string): Promise<{ bans: number; noExpiry: number }> {
  let bans = 0;
  let noExpiry = 0;
  for (let from = 0; from < 1024; from += 128) {
    const [b, bare] = (await admin.eval(
      `local total, bare = 0, 0
       for n = tonumber(ARGV[2]), tonumber(ARGV[2]) + 127 do
         local key = ARGV[1] .. '{s' .. n .. '}:b'
         total = total + redis.call('HLEN', key) - redis.call('HEXISTS', key, '#x') - redis.call('HEXISTS', key, '#c')
         if redis.call('PTTL', key) == -1 then bare = bare + 1 end
         if redis.call('PTTL', ARGV[1] .. '{s' .. n .. '}:v') == -1 then bare = bare + 1 end
       end
       return {total, bare}`,
      0,
      prefix,
      from,
    )) as [number, number];
    bans += b;
    noExpiry += bare;
  }
  return { bans, noExpiry };
}

/** Every key of `prefix` without an expiry (SCAN, then PTTL in pipelines), by kind (`b`, `v`, `h`...). */
async function keysWithoutExpiry(admin: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000);
    cursor = next;
    const pipeline = admin.pipeline();
    for (const key of keys) pipeline.pttl(key);
    const ttls = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      if (ttls[i]?.[1] !== -1) return;
      const kind = /\}:(\w+)/.exec(key)?.[1] ?? key.slice(prefix.length);
      out[kind] = (out[kind] ?? 0) + 1;
    });
  } while (cursor !== '0');
  return out;
}

/** The CPU time redis-server has used (INFO cpu), in ms. */
async function redisCpuMs(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const of = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (of('used_cpu_user') + of('used_cpu_sys')) * 1000;
}

/**
 * JK_DEBUG_HEAL: where the slow clean logins' time went. For each login over `overMs` (timed by
 * the client): its time in the app and in store.reserve (the store's call, Redis' queue
 * included), and the app's event-loop delays over 15 ms during it (recovery-app.mjs measures).
 */
async function explainSlow(
  instances: readonly Instance[],
  clean: readonly { at: number; ms: number; k: number }[],
  from: number,
  overMs: number,
): Promise<void> {
  const timings = await Promise.all(instances.map((i) => i.ask({ op: 'timings', from })));
  for (const c of clean) {
    if (c.ms <= overMs) continue;
    const t = timings[c.k] as Answer;
    const seen = (t.logins ?? []).find((l) => l[0] >= c.at - 5 && l[0] <= c.at + c.ms);
    const delays = (t.delays ?? []).filter((d) => d[0] - d[1] < c.at + c.ms && d[0] > c.at);
    console.log(
      `#   slow clean login, instance ${c.k}, +${c.at - from} ms: ${c.ms.toFixed(0)} ms at the client; ` +
        (seen === undefined
          ? 'not seen by the app (refused, or before its arrival was timed)'
          : `in the app from +${seen[0] - c.at} ms: ${seen[1].toFixed(0)} ms, ${seen[2].toFixed(0)} ms of it in store.reserve`) +
        `; event-loop delays meanwhile ${delays.map((d) => `${d[1].toFixed(0)} (+${(d[0] - d[1] - c.at).toFixed(0)})`).join(', ') || 'none over 15 ms'}`,
    );
  }
  for (const [k, t] of timings.entries()) {
    const reserves = (t.logins ?? []).map((l) => l[2]).sort((a, b) => a - b);
    const delays = (t.delays ?? []).map((d) => d[1]).sort((a, b) => b - a);
    console.log(
      `#   instance ${k}: clean logins seen ${reserves.length}, store.reserve p50 ${(reserves[reserves.length >> 1] ?? 0).toFixed(1)} ms, max ${(reserves[reserves.length - 1] ?? 0).toFixed(1)} ms; ` +
        `event-loop delays over 15 ms: ${delays.length}, longest ${delays
          .slice(0, 8)
          .map((d) => d.toFixed(0))
          .join('/')} ms, total ${delays.reduce((a, b) => a + b, 0).toFixed(0)} ms`,
    );
  }
}

/** JK_DEBUG_HEAL: Redis' slow log (calls over 2 ms since `slowlog()` was armed), summed by command. */
async function slowlog(admin: Redis): Promise<string> {
  // The store's scripts by their SHA-1 (EVALSHA names them so), from the built package.
  const names = new Map<string, string>();
  for (const file of ['bans.js', 'failure.js']) {
    const lua = (await import(
      join(dirname(app), '..', '..', 'packages', 'redis', 'dist', 'lua', file)
    )) as Record<string, unknown>;
    for (const [name, text] of Object.entries(lua))
      if (typeof text === 'string') names.set(createHash('sha1').update(text).digest('hex'), name);
  }
  const entries = (await admin.call('SLOWLOG', 'GET', '1000')) as [number, number, number, string[]][];
  const by = new Map<string, { n: number; us: number; max: number; keys: number }>();
  for (const [, , us, args] of entries) {
    // EVALSHA <sha> <numkeys> ...: named by its script, with its largest key count
    const name =
      args[0]?.toLowerCase() === 'evalsha'
        ? (names.get(args[1] as string) ?? `evalsha ${args[1]?.slice(0, 8)}`)
        : String(args[0]).toLowerCase();
    const e = by.get(name) ?? { n: 0, us: 0, max: 0, keys: 0 };
    e.n++;
    e.us += us;
    e.max = Math.max(e.max, us);
    if (args[0]?.toLowerCase() === 'evalsha') e.keys = Math.max(e.keys, Number(args[2]));
    by.set(name, e);
  }
  return [...by]
    .map(
      ([name, e]) =>
        `${name}: ${e.n} over 2 ms, ${(e.us / 1000).toFixed(0)} ms in all, longest ${(e.max / 1000).toFixed(1)} ms${e.keys > 0 ? `, up to ${e.keys} keys` : ''}`,
    )
    .join('; ');
}

/** One login over a new connection from `from` (default 127.0.0.1): its status and its time. */
function login(port: number, password: string, from?: string): Promise<{ status: number; ms: number }> {
  const body = JSON.stringify({ user: 'admin', password });
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/login',
        agent: false,
        ...(from === undefined ? {} : { localAddress: from }),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 20_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

/** Steady traffic until stopped: clean logins and logins from banned addresses, every instance. */
function traffic(ports: readonly number[], bans: number) {
  const clean: { at: number; ms: number; status: number; k: number }[] = [];
  const banned: number[] = [];
  let running = true;
  const loops = ports.flatMap((port, k) => [
    (async () => {
      while (running) {
        const at = Date.now();
        const { status, ms } = await login(port, PASSWORD);
        clean.push({ at, ms, status, k });
        await sleep(10);
      }
    })(),
    (async () => {
      while (running) {
        const { status } = await login(port, 'guess', seededClient(Math.floor(Math.random() * bans)));
        banned.push(status);
        await sleep(20);
      }
    })(),
  ]);
  return {
    clean,
    banned,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

for (const BANS of SIZES) {
  const BOUND_MS = BANS <= 20_000 ? 1000 : 2000;
  describe(`recovery, ${BANS.toLocaleString('en')} bans, ${INSTANCES} app processes`, {
    skip: !LONG && 'set JK_LONG_TESTS to run',
  }, () => {
    const prefix = `jkrf${process.pid}-${BANS}:`;
    let redis: TestRedis;
    let admin: Redis;
    let instances: Instance[];
    let ports: number[];

    before(async () => {
      // A server of this test's own, even when REDIS_URL is set: it is flushed, killed and restarted.
      redis = await startRedis({ port: await freePort() });
      admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 20 });
      admin.on('error', () => {});
      await seedBans(
        admin,
        prefix,
        'login',
        Array.from({ length: BANS }, (_, i) => seededClient(i)),
        3_600_000,
      );
      instances = Array.from({ length: INSTANCES }, () => new Instance(redis.url, prefix));
      ports = await Promise.all(instances.map((i) => i.port));
    });
    after(async () => {
      await Promise.all((instances ?? []).map((i) => i.stop()));
      admin?.disconnect();
      await redis?.stop();
    });

    /**
     * Runs a data-loss fault and asserts what must hold (no banned address and no attacker past
     * maxRetry reaches a handler, every ban back with its expiry, no false "down"). Returns the
     * issue's time bounds it missed, which the test reports as todo: not met yet (docs/security.md).
     */
    async function heal(name: string, fault: () => Promise<void>, external: boolean): Promise<string[]> {
      const enforcedBefore = await Promise.all(
        instances.map(async (i) => (await i.ask({ op: 'enforced', first: 0, count: BANS })).enforced),
      );
      assert.deepEqual(
        enforcedBefore,
        enforcedBefore.map(() => BANS),
        `${name}: enforced before the fault`,
      );
      const unbansBefore = await Promise.all(
        instances.map(async (i) => (await i.ask({ op: 'seededUnbans' })).unbans),
      );
      const runsBefore = await Promise.all(
        instances.map(async (i) => (await i.ask({ op: 'seededRuns' })).runs),
      );
      await Promise.all(instances.map((i) => i.ask({ op: 'lag' })));
      // Started before the traffic: starting a profile holds the instance a few hundred ms.
      const profiling = process.env.JK_FLEET_CPU_PROF;
      if (profiling) await Promise.all(instances.map((i) => i.ask({ op: 'profile' })));
      const load = traffic(ports, BANS);
      // A while of traffic before the fault: the slowest clean login then is what this machine
      // does without a heal (other developers' work beside it), printed beside the rest.
      await sleep(CONTROL_MS);
      if (process.env.JK_DEBUG_HEAL) await admin.config('RESETSTAT').catch(() => {});
      const faultAt = Date.now();
      await fault();
      const answered = Date.now();
      // FLUSHALL blocks Redis while it frees the keys (100 to 450 ms at load 5 to 13 here): one
      // that held it longer than the store's deadline is an outage like the others, and a call
      // queued behind it may miss its deadline up to 100 ms after it.
      const stalled = external || answered - faultAt > 100;
      const cpuAtAnswer = await redisCpuMs(admin);
      if (process.env.JK_DEBUG_HEAL) {
        await admin.config('SET', 'slowlog-log-slower-than', '2000');
        await admin.config('SET', 'slowlog-max-len', '1000');
        await admin.call('SLOWLOG', 'RESET');
      }
      // Each instance is back once its client has reconnected (for a fault that closed the
      // connections) and a call queued meanwhile has had its deadline (100 ms) to end: a storeDown
      // before then is the outage; one after it is the recovery's. New attackers start once every
      // instance is back and not degraded (until then an instance counts locally: the documented
      // degraded bound, which is not what this test is about).
      let backAt: number[] = [];
      for (;;) {
        const states = await Promise.all(instances.map((i) => i.ask({ op: 'state' })));
        backAt = states.map((s) => Math.max(answered, ...(s.readyAt ?? [])) + (stalled ? 100 : 0));
        if (states.every((s, k) => s.connected && !s.degraded && Date.now() > (backAt[k] as number))) break;
        assert.ok(
          Date.now() - answered < 10_000,
          `${name}: an instance still degraded 10 s after Redis answered`,
        );
        await sleep(5);
      }
      const attackers = [freshClient(), freshClient(), freshClient()];
      const attacks = Promise.all(attackers.map((a) => pipelined(ports, a, 20)));
      let whole = -1;
      /** When Redis held every ban again, with expiry; and when the instances' check confirmed. */
      let redisWhole = -1;
      let confirmed = -1;
      let seen = { bans: 0, noExpiry: 0 };
      let enforced: number[] = [];
      for (;;) {
        seen = await contents(admin, prefix).catch(() => ({ bans: 0, noExpiry: -1 }));
        if (process.env.JK_DEBUG_HEAL)
          console.log(
            `#   +${Date.now() - answered} ms: ${seen.bans} bans, ${seen.noExpiry} keys without expiry`,
          );
        if (seen.bans >= BANS && seen.noExpiry === 0) {
          if (redisWhole < 0) redisWhole = Date.now() - answered;
          // When no instance dropped a seeded ban since the check before the fault (its unban
          // events; and none reached a handler, asserted below), every instance enforced every
          // ban throughout, and the fleet was whole when Redis was. The check of every ban then
          // waits for the traffic to end (below): asked of three instances at once, 100,000
          // checks each, paced, it took the machine for 1.3 s or more just as the clean logins
          // were timed, and most clean logins over 200 ms in the debug runs came during it.
          const unbans = await Promise.all(
            instances.map(async (i) => (await i.ask({ op: 'seededUnbans' })).unbans),
          );
          if (unbans.every((u, k) => u === unbansBefore[k])) {
            whole = redisWhole;
            break;
          }
          enforced = await Promise.all(
            instances.map(
              async (i) => (await i.ask({ op: 'enforced', first: 0, count: BANS })).enforced as number,
            ),
          );
          if (enforced.every((e) => e === BANS)) {
            confirmed = Date.now() - answered;
            whole = confirmed;
            break;
          }
        }
        if (Date.now() - answered > 30_000) break;
        // The check is a Lua loop over the 1,024 shards (5-10 ms of Redis on this machine): every
        // 20 ms it took about a third of Redis from the recovery it measures. Every 100 ms: whole
        // is known to within 100 ms.
        await sleep(100);
      }
      const redisCpu = (await redisCpuMs(admin)) - cpuAtAnswer;
      if (profiling)
        await Promise.all(
          instances.map((i, k) =>
            i.ask({
              op: 'profile',
              file: join(profiling, `${name.replace(/\W+/g, '-')}-${BANS}-${k}.cpuprofile`),
            }),
          ),
        );
      if (process.env.JK_DEBUG_HEAL)
        console.log(
          `# commandstats ${(await admin.info('commandstats'))
            .split('\n')
            .filter((l) => l.startsWith('cmdstat'))
            .join(' ')}`,
          `\n# slowlog ${await slowlog(admin)}`,
        );
      await attacks;
      await sleep(1000); // traffic a while after the heal
      await load.stop();
      if (whole >= 0 && confirmed < 0) {
        // Whole by the unban events: every instance still enforces every ban, checked now.
        enforced = await Promise.all(
          instances.map(
            async (i) => (await i.ask({ op: 'enforced', first: 0, count: BANS })).enforced as number,
          ),
        );
        assert.deepEqual(
          enforced,
          instances.map(() => BANS),
          `${name}: every instance enforces every seeded ban once the traffic ended`,
        );
      }
      const states = await Promise.all(instances.map((i) => i.ask({ op: 'state' })));
      const lags = await Promise.all(instances.map(async (i) => (await i.ask({ op: 'lag' })).lag as number));
      const runs = await Promise.all(
        instances.map(async (i) => (await i.ask({ op: 'runs', clients: attackers })).runs as number[]),
      );
      const runsOf = attackers.map((_, k) => runs.reduce((sum, r) => sum + (r[k] ?? 0), 0));
      const seededRuns = await Promise.all(
        instances.map(async (i) => (await i.ask({ op: 'seededRuns' })).runs as number),
      );
      if (process.env.JK_DEBUG_HEAL) await explainSlow(instances, load.clean, faultAt - 300, 150);
      const bare = await keysWithoutExpiry(admin, prefix);
      // Judged: the clean logins that were still open when the fault came, or came after it.
      const times = load.clean.filter((c) => c.at + c.ms >= faultAt).map((c) => c.ms);
      const afterAnswer = load.clean.filter((c) => c.at >= answered).map((c) => c.ms);
      const slowest = Math.max(...times);
      const control = load.clean.filter((c) => c.at + c.ms < faultAt).map((c) => c.ms);
      const downsAfter = states.map((s, k) => (s.downs ?? []).filter((d) => d.at > (backAt[k] as number)));
      const downsDuring = states.map(
        (s, k) => (s.downs ?? []).filter((d) => d.at >= faultAt && d.at <= (backAt[k] as number)).length,
      );
      console.log(
        `# ${name}, ${BANS.toLocaleString('en')} bans, ${INSTANCES} processes: whole (Redis holds every ban with expiry, every instance enforces every ban) ` +
          `${whole} ms after Redis answered (bound ${BOUND_MS} ms; Redis whole at ${redisWhole} ms, ${confirmed >= 0 ? `an instance dropped a seeded ban: the instances' check of every ban done at ${confirmed} ms` : 'no instance dropped a seeded ban, and each enforced every one when checked after the traffic'}; Redis used ${redisCpu.toFixed(0)} ms of CPU meanwhile); ${times.length} clean logins, slowest ${slowest.toFixed(0)} ms ` +
          `(after Redis answered: ${Math.max(0, ...afterAnswer).toFixed(0)} ms), ${times.filter((t) => t > CLEAN_MS).length} over ${CLEAN_MS} ms; ` +
          `before the fault (${CONTROL_MS / 1000} s, no heal): ${control.length} clean logins, slowest ${Math.max(0, ...control).toFixed(0)} ms; ` +
          `${load.banned.length} logins from banned addresses (statuses ${[...new Set(load.banned)].join('/')}), handler runs ${seededRuns.map((r, i) => r - ((runsBefore[i] as number) ?? 0)).join('+')}; ` +
          `new attackers' handler runs ${runsOf.join(', ')}; the fault held Redis ${answered - faultAt} ms; store down during the fault ${downsDuring.join('/')}, once back ${downsAfter.map((d) => d.length).join('/')}${downsAfter.flat().length > 0 ? ` (${downsAfter.flatMap((d, i) => d.map((x) => `instance ${i} at +${x.at - answered} ms after Redis answered: ${x.reason}`)).join('; ')})` : ''}; ` +
          `keys without expiry ${JSON.stringify(bare)}; longest event-loop delay per instance ${lags.map((l) => l.toFixed(0)).join('/')} ms; load average ${loadavg()[0]?.toFixed(1)}`,
      );
      assert.ok(
        whole >= 0,
        `${name}: not whole 30 s after Redis answered: Redis holds ${seen.bans} of ${BANS} (${seen.noExpiry} keys without expiry); enforced ${enforced}`,
      );
      const unmet: string[] = [];
      if (whole > BOUND_MS) unmet.push(`whole ${whole} ms after Redis answered (bound ${BOUND_MS} ms)`);
      assert.deepEqual(
        load.clean.filter((c) => c.status !== 200),
        [],
        `${name}: a clean login was refused or failed`,
      );
      if (slowest > CLEAN_MS)
        unmet.push(`slowest clean login ${slowest.toFixed(0)} ms (bound ${CLEAN_MS} ms)`);
      assert.deepEqual(
        seededRuns.map((r, i) => r - ((runsBefore[i] as number) ?? 0)),
        seededRuns.map(() => 0),
        `${name}: a banned address reached a handler`,
      );
      assert.ok(
        load.banned.length > 0 && !load.banned.includes(200),
        `${name}: banned logins: ${load.banned.length}`,
      );
      for (const [k, a] of attackers.entries()) {
        assert.ok((runsOf[k] as number) >= 1, `${name}: attacker ${a} never reached a handler`);
        assert.ok((runsOf[k] as number) <= MAX_RETRY, `${name}: attacker ${a}: ${runsOf[k]} handler runs`);
      }
      assert.deepEqual(
        downsAfter.map((d) => d.length),
        downsAfter.map(() => 0),
        `${name}: an instance reported Redis down once back (${downsAfter.flat().map((d) => d.reason)})`,
      );
      assert.deepEqual(bare, {}, `${name}: keys left in Redis without an expiry`);
      if (!stalled)
        assert.deepEqual(
          downsDuring,
          downsDuring.map(() => 0),
          `${name}: Redis reported down though it never stopped`,
        );
      return unmet;
    }

    it('FLUSHALL', async (t) => {
      const unmet = await heal(
        'FLUSHALL',
        async () => {
          await admin.flushall();
        },
        false,
      );
      if (unmet.length > 0) t.todo(`not met yet: ${unmet.join('; ')}`);
    });

    it('kill -9 and a restart empty on the same port', async (t) => {
      const unmet = await heal(
        'kill -9, restart empty',
        async () => {
          await redis.kill();
          await sleep(500);
          await redis.restart();
        },
        true,
      );
      if (unmet.length > 0) t.todo(`not met yet: ${unmet.join('; ')}`);
    });

    it('SHUTDOWN NOSAVE and a restart on the same port', async (t) => {
      const unmet = await heal(
        'SHUTDOWN NOSAVE, restart',
        async () => {
          await admin.shutdown('NOSAVE').catch(() => {});
          await redis.kill(); // reaps the process (it has exited already)
          await redis.restart();
        },
        true,
      );
      if (unmet.length > 0) t.todo(`not met yet: ${unmet.join('; ')}`);
    });
  });
}

/**
 * Faults that lose nothing, at N bans (default 100,000; JK_RECOVERY_FAULT_BANS): Redis stopped 5 s
 * (SIGSTOP), a partition of 5 s (a proxy that lets nothing through either way and resets nothing,
 * then delivers what it held, as TCP would), 300 ms added to every reply for 5 s. The instances
 * reach Redis through the proxy. While it lasts, an attacker is banned on the first instance
 * (locally: the store is degraded there). Whole: every instance answering from Redis again,
 * enforcing that ban and every seeded one, and Redis holding it, within 1 s of Redis answering
 * normally (the issue's bound, asserted); then no instance reports Redis down again in the 3 s
 * after (no flapping).
 */
const FAULT_BANS = Number(process.env.JK_RECOVERY_FAULT_BANS ?? 100_000);
describe(`faults at ${FAULT_BANS.toLocaleString('en')} bans, ${INSTANCES} app processes behind a proxy`, {
  skip: !LONG && 'set JK_LONG_TESTS to run',
}, () => {
  const prefix = `jkff${process.pid}:`;
  let redis: TestRedis;
  let admin: Redis;
  let proxy: TcpProxy;
  let instances: Instance[];
  let ports: number[];

  before(async () => {
    redis = await startRedis({ port: await freePort() });
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    admin.on('error', () => {});
    await seedBans(
      admin,
      prefix,
      'login',
      Array.from({ length: FAULT_BANS }, (_, i) => seededClient(i)),
      3_600_000,
    );
    proxy = new TcpProxy(redis.port);
    const url = `redis://127.0.0.1:${await proxy.listen()}`;
    instances = Array.from({ length: INSTANCES }, () => new Instance(url, prefix));
    ports = await Promise.all(instances.map((i) => i.port));
  });
  after(async () => {
    proxy?.heal();
    redis?.resume();
    await Promise.all((instances ?? []).map((i) => i.stop()));
    await proxy?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  async function fault(name: string, start: () => void, end: () => void): Promise<void> {
    const load = traffic(ports, FAULT_BANS);
    await sleep(300);
    await Promise.all(instances.map((i) => i.ask({ op: 'lag' })));
    const faultAt = Date.now();
    start();
    let normal = 0;
    const attacker = freshClient();
    try {
      await sleep(1000);
      await pipelined([ports[0] as number], attacker, 20);
      await sleep(4000);
    } finally {
      end();
      normal = Date.now();
    }
    let whole = -1;
    let states: Answer[] = [];
    for (;;) {
      states = await Promise.all(instances.map((i) => i.ask({ op: 'state' })));
      if (states.every((s) => !s.degraded)) {
        const enforced = await Promise.all(
          instances.map(async (i) => (await i.ask({ op: 'enforcing', client: attacker })).enforced),
        );
        const inRedis = await holdsBanOf(admin, prefix, attacker).catch(() => false);
        if (enforced.every((e) => e === 1) && inRedis) {
          whole = Date.now() - normal;
          break;
        }
      }
      if (Date.now() - normal > 30_000) break;
      await sleep(10);
    }
    const wholeAt = Date.now();
    await sleep(3000); // flapping: a healthy Redis reported down again afterwards
    await load.stop();
    const after = await Promise.all(instances.map((i) => i.ask({ op: 'state' })));
    const flaps = after.map((s) => (s.downs ?? []).filter((d) => d.at > wholeAt));
    const downs = after.map((s) => (s.downs ?? []).filter((d) => d.at >= faultAt && d.at <= wholeAt).length);
    const stored = await contents(admin, prefix);
    const enforced = await Promise.all(
      instances.map(
        async (i) => (await i.ask({ op: 'enforced', first: 0, count: FAULT_BANS })).enforced as number,
      ),
    );
    const runs = await Promise.all(
      instances.map(
        async (i) => ((await i.ask({ op: 'runs', clients: [attacker] })).runs as number[])[0] ?? 0,
      ),
    );
    const lags = await Promise.all(instances.map(async (i) => (await i.ask({ op: 'lag' })).lag as number));
    const times = load.clean.map((c) => c.ms);
    const afterNormal = load.clean.filter((c) => c.at >= normal).map((c) => c.ms);
    console.log(
      `# ${name}, ${FAULT_BANS.toLocaleString('en')} bans, ${INSTANCES} processes: whole (every instance up, enforcing the ban made meanwhile, Redis holding it) ` +
        `${whole} ms after Redis answered normally (bound 1000 ms); store down per instance ${downs.join('/')}, again in the 3 s after ${flaps.map((f) => f.length).join('/')}` +
        `${flaps.flat().length > 0 ? ` (${flaps.flatMap((f, i) => f.map((x) => `instance ${i} at +${x.at - wholeAt} ms: ${x.reason}`)).join('; ')})` : ''}; ` +
        `Redis holds ${stored.bans} bans, instances enforce ${enforced.join('/')}; the attacker's handler runs ${runs.join('+')}; ` +
        `${times.length} clean logins, slowest ${Math.max(...times).toFixed(0)} ms (after Redis answered normally: ${Math.max(0, ...afterNormal).toFixed(0)} ms), ` +
        `${afterNormal.filter((t) => t > CLEAN_MS).length} over ${CLEAN_MS} ms after; longest event-loop delay per instance ${lags.map((l) => l.toFixed(0)).join('/')} ms; ` +
        `load average ${loadavg()[0]?.toFixed(1)}`,
    );
    assert.ok(
      whole >= 0,
      `${name}: not whole 30 s after Redis answered normally (${JSON.stringify(states)})`,
    );
    assert.ok(whole <= 1000, `${name}: whole ${whole} ms after Redis answered normally (bound 1000 ms)`);
    assert.deepEqual(
      flaps.map((f) => f.length),
      flaps.map(() => 0),
      `${name}: Redis reported down again after the recovery (${flaps.flat().map((d) => d.reason)})`,
    );
    assert.ok(stored.bans >= FAULT_BANS + 1, `${name}: Redis holds ${stored.bans} bans`);
    assert.deepEqual(
      enforced,
      enforced.map(() => FAULT_BANS),
      `${name}: seeded bans enforced per instance`,
    );
    assert.deepEqual(
      load.clean.filter((c) => c.status !== 200),
      [],
      `${name}: a clean login was refused or failed`,
    );
    assert.ok(runs.reduce((a, b) => a + b, 0) <= MAX_RETRY, `${name}: the attacker's handler runs ${runs}`);
  }

  it('SIGSTOP 5 s', async () => {
    await fault(
      'SIGSTOP 5 s',
      () => redis.pause(),
      () => redis.resume(),
    );
  });

  it('a partition of 5 s', async () => {
    await fault(
      'partition 5 s',
      () => proxy.partition(),
      () => proxy.heal(),
    );
  });

  it('300 ms added to every reply for 5 s', async () => {
    await fault(
      '300 ms latency 5 s',
      () => {
        proxy.delayMs = 300;
      },
      () => {
        proxy.delayMs = 0;
      },
    );
  });
});
