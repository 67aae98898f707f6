import { after, before } from 'node:test';
import { storeConformance } from '@jailkeeper/core/testing';
import { createRedisStore } from '@jailkeeper/redis';
import { Redis } from 'ioredis';
import { NO_REDIS } from './needs.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
const clients: Redis[] = [];
before(async () => {
  if (NO_REDIS) return;
  redis = await startRedis();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

storeConformance('redis', {
  skip: NO_REDIS,
  make: () => {
    const client = new Redis(redis.url);
    clients.push(client);
    // A unique prefix per run: the tests never see another run's keys.
    return createRedisStore({ client, prefix: `jkt${process.pid}:`, timeout: 2000 });
  },
});
