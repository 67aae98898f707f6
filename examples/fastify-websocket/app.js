// The /ws incident of the seed article: /ws answers 403 to addresses not on its whitelist, by
// design, and browsers retry it. With fail2ban's nginx-forbidden (maxretry 2) every customer who
// opened a page was banned. Here /ws is exempt: only 403s elsewhere count.
import { createJailkeeper } from '@jailkeeper/core';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';

export async function start({ port = 3001, host = '127.0.0.1', wsWhitelist = [], logger } = {}) {
  const keeper = createJailkeeper({
    jails: {
      forbidden: { statuses: [403], maxRetry: 2, findTime: '10m', banTime: '1h' },
      scan: { statuses: [404], maxRetry: 10, banTime: '1d' },
    },
    logger,
  });
  const app = Fastify();
  await app.register(jailkeeperPlugin, { keeper });
  // The handshake route: refused by design for addresses off the whitelist. Never counted.
  app.get('/ws', { config: { jailkeeper: false } }, async (request, reply) => {
    const ip = keeper.resolve(request.raw.socket.remoteAddress, request.headers)?.ip;
    if (!wsWhitelist.includes(ip)) return reply.code(403).send({ error: 'not on the /ws whitelist' });
    return reply.code(426).send({ error: 'upgrade required' });
  });
  app.get('/', async () => 'page with a live feed on /live\n');
  app.get('/admin', async (_request, reply) => reply.code(403).send({ error: 'forbidden' }));
  await app.listen({ port, host });
  // A live feed: banned clients cannot upgrade, and lose their open socket when banned.
  const wss = new WebSocketServer({ server: app.server, path: '/live' });
  wss.on('connection', (socket) => socket.send('tick'));
  return {
    keeper,
    app,
    url: `http://${host}:${app.server.address().port}`,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await app.close();
      await keeper.close();
    },
  };
}
