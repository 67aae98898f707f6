// Redis commands per counted failure, as Redis itself saw them (MONITOR: every command a client
// sent, and apart, the commands scripts ran inside), for an Express app with jailkeeper on the
// Redis store (login jail on POST /login, statuses [401], maxRetry 5 unless said), over real
// sockets from 127.x addresses:
//   lone     one failure from a new address at a time, the keeper idle before the next
//   stream   100 addresses at once, each sending 5 failures one after another (its 5th bans)
//   burst    50 guesses pipelined in one write from one address (5 counted), 10 times
//   burst-∞  the same with maxRetry 1,000: all 50 counted
// Counted failures are the login handler's runs (each ran and answered 401). Every command the
// store's connections sent during a scenario is counted, background ones (reconcile) included.
// Uses REDIS_URL, or a redis-server of its own.
// Run: npx tsc -b && node bench/redis-calls.bench.js
import { connect } from 'node:net';
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { createRedisStore } from '@jailkeeper/redis';
import express from 'express';
import { Redis } from 'ioredis';
import { ensureRedis } from './http/harness.js';

const url = await ensureRedis();
const quiet = { info() {}, warn() {}, error() {} };
const base = 16 + (process.pid % 200);
let nextAddress = 0;
const fresh = () => {
  const n = nextAddress++;
  return `127.${base}.${Math.floor(n / 254) % 256}.${(n % 254) + 1}`;
};
const request = (close) =>
  `POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;

/** Writes `payload` from `from` and reads until the server closes the connection. */
function exchange(port, from, payload) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      text += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve([...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]))));
    socket.write(payload);
  });
}

/** Counts what clients send Redis (not what scripts run inside), by source, from MONITOR. */
async function monitor() {
  const admin = new Redis(url);
  const m = await admin.monitor();
  const own = new Set();
  const seen = { client: 0, scripts: 0, inner: 0, byName: new Map() };
  m.on('monitor', (_time, args, source) => {
    if (own.has(source)) return;
    if (source === 'lua') {
      seen.inner++;
      return;
    }
    seen.client++;
    const name = String(args[0]).toLowerCase();
    if (name === 'evalsha' || name === 'eval') seen.scripts++;
    seen.byName.set(name, (seen.byName.get(name) ?? 0) + 1);
  });
  return {
    reset() {
      seen.client = 0;
      seen.scripts = 0;
      seen.inner = 0;
      seen.byName.clear();
    },
    /** Waits until MONITOR has shown everything sent so far (a marker command goes through). */
    async flush() {
      const marker = `jk-calls-marker-${Math.random()}`;
      const done = new Promise((resolve) => {
        const on = (_t, args, source) => {
          if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) {
            own.add(source);
            m.off('monitor', on);
            resolve();
          }
        };
        m.on('monitor', on);
      });
      await admin.echo(marker);
      await done;
      return { ...seen, byName: new Map(seen.byName) };
    },
    close() {
      m.disconnect();
      admin.disconnect();
    },
  };
}

async function app(maxRetry) {
  const client = new Redis(url);
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry, banTime: '1h' } },
    logger: quiet,
    store: createRedisStore({ client, prefix: `jkcalls${process.pid}-${maxRetry}:` }),
  });
  await keeper.ready;
  let runs = 0;
  const web = express();
  web.use(jailkeeper(keeper));
  web.post('/login', (_req, res) => {
    runs++;
    res.status(401).send('wrong password');
  });
  const server = web.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: server.address().port,
    keeper,
    runs: () => runs,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await keeper.close();
      client.disconnect();
    },
  };
}

const mon = await monitor();
const rows = [];
async function scenario(name, target, run) {
  await target.keeper.idle();
  await mon.flush();
  mon.reset();
  const runs0 = target.runs();
  await run();
  await target.keeper.idle();
  const seen = await mon.flush();
  const counted = target.runs() - runs0;
  const names = [...seen.byName].map(([k, v]) => `${k} ${v}`).join(', ');
  rows.push({ name, counted, ...seen, names });
}

const five = await app(5);
const many = await app(1000);
// Warm-up: the scripts are loaded (EVALSHA, NOSCRIPT, EVAL) before anything is counted.
await exchange(five.port, fresh(), request(true));
await exchange(many.port, fresh(), request(true));

await scenario('lone failure (100, one at a time)', five, async () => {
  for (let i = 0; i < 100; i++) {
    await exchange(five.port, fresh(), request(true));
    await five.keeper.idle();
  }
});
await scenario('stream: 100 addresses × 5 failures', five, async () => {
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      const from = fresh();
      for (let i = 0; i < 5; i++) {
        await exchange(five.port, from, request(true));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }),
  );
});
await scenario('burst: 50 pipelined, maxRetry 5 (×10)', five, async () => {
  for (let r = 0; r < 10; r++) {
    await exchange(five.port, fresh(), request(false).repeat(49) + request(true));
    await five.keeper.idle();
  }
});
await scenario('burst: 50 pipelined, maxRetry 1000 (×10)', many, async () => {
  for (let r = 0; r < 10; r++) {
    await exchange(many.port, fresh(), request(false).repeat(49) + request(true));
    await many.keeper.idle();
  }
});

console.log(
  '| scenario | counted failures | commands sent | per counted failure | script calls | commands inside scripts | by name |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.counted} | ${r.client} | ${(r.client / r.counted).toFixed(2)} | ${r.scripts} | ${r.inner} | ${r.names} |`,
  );
}
await five.close();
await many.close();
mon.close();
