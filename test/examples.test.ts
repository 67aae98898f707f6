import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedis } from './redis-server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

describe('the examples run as the README says', () => {
  it('the demo tells its story and exits', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'examples/demo/demo.js')], {
      timeout: 60_000,
    });
    assert.match(stdout, /jailkeeper banned 127\.0\.66\.6 in jail "login" for 1h/);
    assert.match(stdout, /mallory\s+GET \/ \(any route: the ban is app-wide\)\s+-> 403/);
    assert.match(stdout, /alice\s+GET \/ \(untouched\)\s+-> 200/);
    assert.match(stdout, /alice\s+GET \/ws x5, all 403 \(exempt: never counted\)\s+-> 200/);
    assert.match(stdout, /'s open WebSocket\s+-> closed by the ban/);
    assert.match(stdout, /GET \/ for 198\.51\.100\.8 \(another client\)\s+-> 200/);
  });

  it('cluster-redis: a ban made on one instance is refused by the others', async () => {
    const redis = await startRedis();
    try {
      const { stdout } = await run(process.execPath, [join(root, 'examples/cluster-redis/run.js')], {
        timeout: 60_000,
        env: { ...process.env, REDIS_URL: redis.url },
      });
      assert.equal((stdout.match(/POST \/login on instance :\d+ -> 401/g) ?? []).length, 5);
      assert.equal((stdout.match(/GET \/\s+on instance :\d+ -> 403/g) ?? []).length, 3);
    } finally {
      await redis.stop();
    }
  });
});
