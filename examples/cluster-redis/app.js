// One app instance: node app.js <redis url> <port>. Every instance shares its jails through Redis.
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { createRedisStore } from '@jailkeeper/redis';
import express from 'express';
import { Redis } from 'ioredis';

const [url, port] = process.argv.slice(2);
const keeper = createJailkeeper({
  jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 5, banTime: '1h' } },
  store: createRedisStore({ client: new Redis(url), prefix: 'jk-example:' }),
});
await keeper.ready; // the fleet's active bans are loaded before the first request
const app = express();
app.use(jailkeeper(keeper));
app.post('/login', (_req, res) => res.status(401).send('wrong password\n'));
app.get('/', (_req, res) => res.send(`instance on port ${port}\n`));
app.listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
