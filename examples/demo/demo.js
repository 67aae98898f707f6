// The README's demo. It starts the example servers on free ports, plays a legitimate user and an
// attacker against them over real HTTP (each from its own loopback address), tells what happened,
// and exits. Run from the repository root: npx --yes pnpm@10.34.9 demo
import { request } from 'node:http';
import { formatDuration } from '@jailkeeper/core/operator';
import { start as startProxied } from '@jailkeeper/example-behind-proxy/app.js';
import { start as startLogin } from '@jailkeeper/example-express-login/app.js';
import { start as startWs } from '@jailkeeper/example-fastify-websocket/app.js';
import WebSocket from 'ws';

const ALICE = '127.0.10.1';
const MALLORY = '127.0.66.6';
const ADMIN = '127.0.0.1';

function http(url, { method = 'GET', from, body, headers = {} }) {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        localAddress: from,
        agent: false,
        headers: {
          ...headers,
          ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] }));
      },
    );
    req.on('error', () => resolve({ status: 'connection closed, no answer' }));
    req.end(data);
  });
}

// What the keepers announce (a ban, a pardon) is held and told after the line of the request that
// caused it: the keeper bans when it records the fifth failure, before that 401 has reached the
// attacker, but the story reads in the order the attacker lives it.
const announced = [];
const announce = (text) => announced.push(text);
const line = (who, what, result) => {
  const extra = result.retryAfter
    ? ` (Retry-After: ${formatDuration(Number(result.retryAfter) * 1000)})`
    : '';
  console.log(`   ${who.padEnd(8)} ${what.padEnd(44)} -> ${result.status}${extra}`);
  for (const text of announced.splice(0)) console.log(text);
};
const settle = () => new Promise((r) => setTimeout(r, 30));

console.log('\njailkeeper demo: three small apps, a legitimate user and an attacker, over real HTTP.\n');

// 1. Express login protection.
const login = await startLogin({ port: 0, admin: ADMIN });
login.keeper.on('ban', (b) =>
  announce(`   >>> jailkeeper banned ${b.client} in jail "${b.jail}" for ${formatDuration(b.durationMs)}`),
);
login.keeper.on('pardon', (p) =>
  announce(`   >>> ${p.ip} logged in: it may now fail ${p.maxRetry} times, not 5`),
);
console.log(`1. Express login (${login.url}), jail "login": 5 failures in 10m ban for 1h.`);
line(
  'alice',
  'POST /login, caps lock on',
  await http(`${login.url}/login`, {
    method: 'POST',
    from: ALICE,
    body: { user: 'alice', password: 'CORRECT HORSE' },
  }),
);
line(
  'alice',
  'POST /login, right password',
  await http(`${login.url}/login`, {
    method: 'POST',
    from: ALICE,
    body: { user: 'alice', password: 'correct horse' },
  }),
);
await settle();
for (const guess of ['123456', 'password', 'qwerty', 'letmein', 'dragon', 'monkey']) {
  line(
    'mallory',
    `POST /login, guess "${guess}"`,
    await http(`${login.url}/login`, {
      method: 'POST',
      from: MALLORY,
      body: { user: 'alice', password: guess },
    }),
  );
  await settle();
}
line('mallory', 'GET / (any route: the ban is app-wide)', await http(`${login.url}/`, { from: MALLORY }));
for (let i = 0; i < 6; i++)
  await http(`${login.url}/login`, {
    method: 'POST',
    from: ADMIN,
    body: { user: 'alice', password: 'test' },
  });
line('admin', 'POST /login x6 wrong (ignoreIp), then GET /', await http(`${login.url}/`, { from: ADMIN }));
line('alice', 'GET / (untouched)', await http(`${login.url}/`, { from: ALICE }));
const bans = await login.keeper.bans();
console.log(
  `   bans: ${bans.map((b) => `${b.client} (${b.jail}, ${formatDuration(b.timeLeftMs)} left)`).join(', ')}\n`,
);

// 2. Fastify and the /ws incident.
const live = await startWs({ port: 0 });
live.keeper.on('ban', (b) =>
  announce(`   >>> jailkeeper banned ${b.client} in jail "${b.jail}" for ${formatDuration(b.durationMs)}`),
);
console.log(
  `2. Fastify (${live.url}): /ws answers 403 by design to addresses off its whitelist; jail "forbidden" bans at 2.`,
);
for (let i = 0; i < 5; i++) await http(`${live.url}/ws`, { from: ALICE });
await settle();
line('alice', 'GET /ws x5, all 403 (exempt: never counted)', await http(`${live.url}/`, { from: ALICE }));
const feed = new WebSocket(`${live.url.replace('http', 'ws')}/live`, { localAddress: MALLORY });
await new Promise((r) => feed.once('message', r));
console.log('   mallory  opens the live feed (a WebSocket)                -> connected');
const feedClosed = new Promise((r) => feed.once('close', r));
line('mallory', 'GET /admin', await http(`${live.url}/admin`, { from: MALLORY }));
line('mallory', 'GET /admin', await http(`${live.url}/admin`, { from: MALLORY }));
await feedClosed;
console.log("   mallory  's open WebSocket                                -> closed by the ban");
line('mallory', 'GET /', await http(`${live.url}/`, { from: MALLORY }));
console.log();

// 3. Behind a proxy.
const proxied = await startProxied({ port: 0, proxies: [ADMIN] });
console.log(
  `3. Behind a proxy on ${ADMIN} (${proxied.url}): the client is the rightmost X-Forwarded-For entry.`,
);
for (let i = 0; i < 3; i++) {
  line(
    'proxy',
    'GET /private for 198.51.100.7',
    await http(`${proxied.url}/private`, { from: ADMIN, headers: { 'x-forwarded-for': '198.51.100.7' } }),
  );
  await settle();
}
line(
  'proxy',
  'GET / for 198.51.100.7 (banned; 403, not drop)',
  await http(`${proxied.url}/`, { from: ADMIN, headers: { 'x-forwarded-for': '198.51.100.7' } }),
);
line(
  'proxy',
  'GET / for 198.51.100.8 (another client)',
  await http(`${proxied.url}/`, { from: ADMIN, headers: { 'x-forwarded-for': '198.51.100.8' } }),
);
line(
  'mallory',
  'GET /private direct, spoofing X-Forwarded-For',
  await http(`${proxied.url}/private`, { from: MALLORY, headers: { 'x-forwarded-for': '198.51.100.8' } }),
);
console.log(
  `   (the spoofed header came from ${MALLORY}, not a trusted proxy: counted against ${MALLORY} itself)`,
);

await Promise.all([login.close(), live.close(), proxied.close()]);
console.log(`
To keep an example running and try it with curl:
  npx --yes pnpm@10.34.9 --filter @jailkeeper/example-express-login start
  npx --yes pnpm@10.34.9 --filter @jailkeeper/example-fastify-websocket start
  npx --yes pnpm@10.34.9 --filter @jailkeeper/example-behind-proxy start

To watch and lift bans in the operators' console, start the login example with a token:
  JAILKEEPER_TOKEN=demo-token-change-me npx --yes pnpm@10.34.9 --filter @jailkeeper/example-express-login start
then open http://127.0.0.1:3000/_jailkeeper/console/ and sign in with the token.
`);
