import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NO_REDIS } from './needs.js';
import { startRedis } from './redis-server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

describe('the examples run as the README says', () => {
  it('the demo tells its story and exits', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'examples/demo/demo.js')], {
      timeout: 60_000,
    });
    assert.match(stdout, /jailkeeper banned 127\.0\.66\.6 in jail "login" for 1h/);
    // The story reads in the attacker's order: the fifth guess's 401, then the ban, then the 403s.
    const lines = stdout.split('\n');
    const fifth = lines.findIndex((l) => /mallory\s+POST \/login, guess "dragon"\s+-> 401/.test(l));
    const ban = lines.findIndex((l) => /jailkeeper banned 127\.0\.66\.6 in jail "login"/.test(l));
    const sixth = lines.findIndex((l) => /mallory\s+POST \/login, guess "monkey"\s+-> 403/.test(l));
    assert.ok(fifth !== -1 && fifth < ban && ban < sixth, `out of order:\n${stdout}`);
    assert.match(stdout, /mallory\s+GET \/ \(any route: the ban is app-wide\)\s+-> 403/);
    assert.match(stdout, /alice\s+GET \/ \(untouched\)\s+-> 200/);
    assert.match(stdout, /alice\s+GET \/ws x5, all 403 \(exempt: never counted\)\s+-> 200/);
    assert.match(stdout, /'s open WebSocket\s+-> closed by the ban/);
    assert.match(stdout, /GET \/ for 198\.51\.100\.8 \(another client\)\s+-> 200/);
  });

  it('hono-behind-proxy: clients behind the proxy are banned by their forwarded address, spoofers by theirs', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'examples/hono-behind-proxy/run.js')], {
      timeout: 60_000,
    });
    assert.equal(
      (stdout.match(/198\.51\.100\.7 via the proxy\s+POST \/login \(guess \d\)\s+-> 401/g) ?? []).length,
      3,
    );
    assert.match(stdout, /198\.51\.100\.7 via the proxy\s+POST \/login \(guess 4\)\s+-> 403/);
    assert.match(
      stdout,
      /198\.51\.100\.7 via the proxy\s+GET \/\s+-> 403/,
      'refused, not dropped: behind the proxy',
    );
    assert.match(stdout, /198\.51\.100\.8 via the proxy\s+GET \/\s+-> 200 hello 198\.51\.100\.8/);
    assert.match(stdout, /127\.0\.0\.9 direct, claiming \.8\s+GET \/\s+-> 200 hello 127\.0\.0\.9/);
    assert.match(stdout, /127\.0\.0\.9 direct, after 3 failures\s+GET \/\s+-> dropped/);
    assert.match(stdout, /the bans\s+-> 198\.51\.100\.7 \(login\), 127\.0\.0\.9 \(login\)/);
  });

  it('nestjs-login: type-checks, bans at maxRetry before Nest, closes and refuses the live feed', async () => {
    const dir = join(root, 'examples/nestjs-login');
    // Decorators as a Nest app writes them: checked by tsc with the example's own tsconfig.
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], {
      timeout: 120_000,
    });
    // tsx reads experimentalDecorators from the tsconfig of the directory it runs in.
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'run.ts'], {
      cwd: dir,
      timeout: 60_000,
    });
    assert.match(stdout, /mallory\s+opens the live feed \/live\s+-> message "tick"/);
    assert.equal((stdout.match(/mallory\s+POST \/auth\/login \(guess \d\)\s+-> 401/g) ?? []).length, 3);
    assert.match(stdout, /mallory\s+POST \/auth\/login \(guess 4\)\s+-> 403/);
    assert.match(stdout, /mallory\s+the live feed opened before the ban\s+-> closed by the ban/);
    assert.match(stdout, /mallory\s+opens \/live again\s+-> refused 403/);
    assert.match(stdout, /alice\s+GET \/auth\/session x5 \(401 by design, exempt\)\s+-> 401 401 401 401 401/);
    assert.match(stdout, /alice\s+POST \/auth\/login \(right password\)\s+-> 200/);
    assert.match(stdout, /banned\s+-> 127\.0\.66\.6 in jail "login"$/m);
  });

  it('cluster-redis: a ban made on one instance is refused by the others', { skip: NO_REDIS }, async () => {
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
