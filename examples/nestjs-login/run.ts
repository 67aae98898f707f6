// The story of the example, told with real requests and a real WebSocket: npm run story
import { once } from 'node:events';
import { request } from 'node:http';
import WebSocket from 'ws';
import { start } from './src/app.js';

const app = await start({ port: 0, logger: { info() {}, warn() {}, error() {} } });
const port = new URL(app.url).port;

function send(method: string, path: string, from: string, body?: object): Promise<string> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        localAddress: from,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('error', () => resolve('dropped'));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const line = (who: string, what: string, result: string) =>
  console.log(`${who.padEnd(8)} ${what.padEnd(44)} -> ${result}`);
const mallory = '127.0.66.6';
const alice = '127.0.66.7';

const live = new WebSocket(`ws://127.0.0.1:${port}/live`, { localAddress: mallory });
const [tick] = await once(live, 'message');
line('mallory', 'opens the live feed /live', `message "${tick}"`);
const closed = once(live, 'close');
for (let i = 1; i <= 4; i++) {
  line(
    'mallory',
    `POST /auth/login (guess ${i})`,
    await send('POST', '/auth/login', mallory, { user: 'alice', password: `guess${i}` }),
  );
  await app.keeper.idle();
}
await closed;
line('mallory', 'the live feed opened before the ban', 'closed by the ban');
const again = new WebSocket(`ws://127.0.0.1:${port}/live`, { localAddress: mallory });
again.on('error', () => {});
const [, refused] = (await once(again, 'unexpected-response')) as [unknown, { statusCode: number }];
line('mallory', 'opens /live again', `refused ${refused.statusCode}`);
again.terminate();
let sessions = '';
for (let i = 0; i < 5; i++) sessions += `${await send('GET', '/auth/session', alice)} `;
line('alice', 'GET /auth/session x5 (401 by design, exempt)', sessions.trim());
line(
  'alice',
  'POST /auth/login (right password)',
  await send('POST', '/auth/login', alice, { user: 'alice', password: 'correct horse battery staple' }),
);
line('', 'banned', (await app.keeper.bans()).map((b) => `${b.client} in jail "${b.jail}"`).join(', '));
await app.close();
