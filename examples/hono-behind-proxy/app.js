// A Hono app behind nginx on the same host: the socket peer is the proxy (loopback), the client is
// the rightmost X-Forwarded-For entry. What a client writes in its own X-Forwarded-For is believed
// only when it comes through the proxy, which appends the address it saw.
import { serve } from '@hono/node-server';
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/hono';
import { Hono } from 'hono';

export async function start({ port = 3003, host = '127.0.0.1', proxies = ['127.0.0.1'], logger } = {}) {
  const keeper = createJailkeeper({
    jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '30m' } },
    trustedProxies: proxies,
    clientIpHeader: 'x-forwarded-for',
    logger,
  });
  // Behind a proxy, 'drop' falls back to 403: destroying the proxy's pooled connection would cut
  // other clients' requests too. A client that connects directly is dropped.
  const jk = jailkeeper(keeper, { block: 'drop' });
  const app = new Hono();
  app.use(jk);
  app.post('/login', async (c) => {
    const { password } = await c.req.json().catch(() => ({}));
    return password === 'correct horse' ? c.text('welcome\n') : c.text('wrong password\n', 401);
  });
  app.get('/', (c) => c.text(`hello ${c.var.jailkeeper?.client.ip}\n`));
  const server = serve({ fetch: app.fetch, port, hostname: host });
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
