// Starts three instances of app.js behind one Redis (REDIS_URL, or a redis-server of its own),
// spreads an attacker's failed logins over them, and shows the ban refused by every instance.
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { createServer } from 'node:net';

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}

let redisServer;
let url = process.env.REDIS_URL;
if (!url) {
  const port = await freePort();
  redisServer = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  await new Promise((r) => setTimeout(r, 300));
  url = `redis://127.0.0.1:${port}`;
}

const ports = [await freePort(), await freePort(), await freePort()];
const instances = ports.map((port) => fork(new URL('./app.js', import.meta.url), [url, String(port)]));
await Promise.all(instances.map((child) => once(child, 'message')));
console.log(`three instances on ports ${ports.join(', ')}, one Redis at ${url}\n`);

const send = (port, method, path) =>
  new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, localAddress: '127.0.66.6', agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', () => resolve('error'));
    req.end();
  });

for (let i = 0; i < 5; i++) {
  const port = ports[i % 3];
  console.log(`attacker  POST /login on instance :${port} -> ${await send(port, 'POST', '/login')}`);
}
// The fifth failure is recorded as its response closes, and the ban reaches the other instances
// through pub/sub: wait (at most 5 s) until each instance refuses the attacker, then show it.
for (const port of ports) {
  for (const until = Date.now() + 5000; Date.now() < until; ) {
    if ((await send(port, 'HEAD', '/not-a-route')) === 403) break;
    await new Promise((r) => setTimeout(r, 20));
  }
}
for (const port of ports)
  console.log(`attacker  GET /       on instance :${port} -> ${await send(port, 'GET', '/')}`);
console.log('\nfive failures spread over three instances: one ban, refused by all of them.');

for (const child of instances) child.kill();
redisServer?.kill();
process.exit(0);
