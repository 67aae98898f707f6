// The story of app.js, told with real requests: node run.js
import { request } from 'node:http';
import { start } from './app.js';

const app = await start({ port: 0, logger: { info() {}, warn() {}, error() {} } });
const { port } = app.server.address();

/** One request on its own connection, from a chosen loopback address, as a proxy or a client would send it. */
function send(method, path, { from = '127.0.0.1', forwardedFor, body } = {}) {
  return new Promise((resolve) => {
    const headers = { 'content-type': 'application/json' };
    if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
    const req = request(
      { host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(`${res.statusCode} ${text.trim()}`));
      },
    );
    req.on('error', () => resolve('dropped (no answer)'));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const line = (who, what, result) => console.log(`${who.padEnd(34)} ${what.padEnd(28)} -> ${result}`);
const mallory = '198.51.100.7';
for (let i = 1; i <= 4; i++) {
  const r = await send('POST', '/login', { forwardedFor: mallory, body: { password: `guess${i}` } });
  line(`${mallory} via the proxy`, `POST /login (guess ${i})`, r);
  await app.keeper.idle();
}
line(`${mallory} via the proxy`, 'GET /', await send('GET', '/', { forwardedFor: mallory }));
line('198.51.100.8 via the proxy', 'GET /', await send('GET', '/', { forwardedFor: '198.51.100.8' }));
// A client that reaches the app directly and claims to be someone else: its header is ignored.
const spoofed = await send('GET', '/', { from: '127.0.0.9', forwardedFor: '198.51.100.8' });
line('127.0.0.9 direct, claiming .8', 'GET /', spoofed);
for (let i = 1; i <= 3; i++)
  await send('POST', '/login', { from: '127.0.0.9', forwardedFor: '198.51.100.9', body: {} });
await app.keeper.idle();
line('127.0.0.9 direct, after 3 failures', 'GET /', await send('GET', '/', { from: '127.0.0.9' }));
line('the bans', '', (await app.keeper.bans()).map((b) => `${b.client} (${b.jail})`).join(', '));
await app.close();
