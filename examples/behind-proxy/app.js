// Behind nginx on the same host: the socket peer is the proxy (loopback); the client is the
// rightmost X-Forwarded-For entry. What a client writes in its own X-Forwarded-For is never believed.
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import express from 'express';

export async function start({ port = 3002, host = '127.0.0.1', proxies = ['loopback'], logger } = {}) {
  const keeper = createJailkeeper({
    jails: { auth: { statuses: [401, 403], maxRetry: 3, banTime: '30m' } },
    trustedProxies: proxies,
    clientIpHeader: 'x-forwarded-for',
    logger,
  });
  const app = express();
  // Behind a proxy, 'drop' falls back to 403: destroying the proxy's pooled connection would cut
  // other clients' requests too.
  app.use(jailkeeper(keeper, { block: 'drop' }));
  app.get('/private', (_req, res) => res.status(401).send('log in first\n'));
  app.get('/', (_req, res) => res.send('hello\n'));
  const server = app.listen(port, host);
  await new Promise((resolve) => server.once('listening', resolve));
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
