// Login protection with Express: five wrong passwords within ten minutes ban for an hour; a user
// who logged in gets twenty tries instead of five (never immunity); the admin is never banned.
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { createMetrics } from '@jailkeeper/ops';
import { jailkeeperAdmin } from '@jailkeeper/ops/express';
import express from 'express';

const USERS = { alice: 'correct horse' };

export async function start({
  port = 3000,
  host = '127.0.0.1',
  admin = '127.0.0.1',
  adminToken,
  logger,
} = {}) {
  const keeper = createJailkeeper({
    jails: {
      login: {
        statuses: [401],
        paths: ['/login'],
        methods: ['POST'],
        maxRetry: 5,
        findTime: '10m',
        banTime: '1h',
        banTimeIncrement: { maxTime: '1w' },
        pardon: { statuses: [200], for: '30d' },
      },
      scan: { statuses: [404], maxRetry: 20, banTime: '1d' },
    },
    ignoreIp: [admin],
    logger,
  });
  const app = express();
  const jk = jailkeeper(keeper);
  app.use(jk); // first: banned clients are refused before anything else runs
  // The admin API (what `jailkeeper --url` talks to) and the console at /_jailkeeper/console/, only
  // when a token is configured.
  if (adminToken) {
    app.use(
      '/_jailkeeper',
      jailkeeperAdmin(keeper, { token: adminToken, metrics: createMetrics(keeper), console: true }),
    );
  }
  app.use(express.json());
  app.post('/login', (req, res) => {
    const { user, password } = req.body ?? {};
    if (USERS[user] !== undefined && USERS[user] === password) res.json({ welcome: user });
    else res.status(401).json({ error: 'wrong user or password' });
  });
  app.get('/', (_req, res) =>
    res.send('jailkeeper example: POST /login {"user":"alice","password":"..."}\n'),
  );
  app.get('/healthz', jk.exempt(), (_req, res) => res.status(503).send('warming up'));
  const server = app.listen(port, host);
  await new Promise((resolve) => server.once('listening', resolve));
  jk.guard(server);
  return {
    keeper,
    server,
    url: `http://${host}:${server.address().port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await keeper.close();
    },
  };
}
