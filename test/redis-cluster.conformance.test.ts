import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createJailkeeper } from '@jailkeeper/core';
import { quietLogger, storeConformance } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Cluster } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { startCluster, type TestCluster } from './redis-cluster.js';

let cluster: TestCluster;
const clients: Cluster[] = [];
before(async () => {
  if (NO_REDIS) return;
  cluster = await startCluster();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await cluster?.stop();
});

const connect = () => {
  const client = new Cluster(cluster.nodes);
  client.on('error', () => {});
  clients.push(client);
  return client;
};

storeConformance('redis cluster (3 masters)', {
  skip: NO_REDIS,
  make: () => createRedisStore({ client: connect(), prefix: `jkc${process.pid}:`, timeout: 2000 }),
});

describe('redis cluster: bans reach every instance', { skip: NO_REDIS }, () => {
  it('a ban made through one client is enforced by another, and lifted everywhere', async () => {
    const jails = { login: { statuses: [401], maxRetry: 2 } };
    const a = createJailkeeper({
      jails,
      logger: quietLogger,
      store: createRedisStore({ client: connect(), prefix: 'jkcb:', timeout: 2000 }),
    });
    const b = createJailkeeper({
      jails,
      logger: quietLogger,
      store: createRedisStore({ client: connect(), prefix: 'jkcb:', timeout: 2000 }),
    });
    await Promise.all([a.ready, b.ready]);
    // Clients whose keys land on different masters.
    const ips = Array.from({ length: 12 }, (_, i) => `198.51.100.${i + 1}`);
    for (const ip of ips)
      for (let i = 0; i < 2; i++) await a.observe({ client: ip, method: 'POST', path: '/', status: 401 });
    const deadline = Date.now() + 2000;
    while (!ips.every((ip) => b.check(ip).banned) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.ok(ips.every((ip) => b.check(ip).banned));
    assert.equal((await b.bans()).length, ips.length, 'listed from every master');
    await b.unbanAll();
    assert.deepEqual(await a.bans(), []);
    await Promise.all([a.close(), b.close()]);
  });
});
