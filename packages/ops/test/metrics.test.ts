import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperOptions } from '@jailkeeper/core';
import * as promClient from 'prom-client';
import { createMetrics } from '../src/metrics.js';

const jails = { login: { statuses: [401], maxRetry: 2, banTime: '1h' } } satisfies JailkeeperOptions['jails'];

describe('metrics', () => {
  it('counts failures, bans, refusals, unbans and active bans per jail', async () => {
    const keeper = createJailkeeper({ jails });
    const metrics = createMetrics(keeper, { prefix: 'app_jk_' });
    const fail = (client: string) => keeper.observe({ client, method: 'POST', path: '/login', status: 401 });
    await fail('203.0.113.1');
    await fail('203.0.113.1');
    await fail('203.0.113.2');
    keeper.check('203.0.113.1');
    keeper.check('203.0.113.1');
    keeper.check('203.0.113.2');
    let text = metrics.text();
    assert.match(text, /^app_jk_failures_total\{jail="login"\} 3$/m);
    assert.match(text, /^app_jk_bans_total\{jail="login"\} 1$/m);
    assert.match(text, /^app_jk_blocked_requests_total\{jail="login"\} 2$/m);
    assert.match(text, /^app_jk_active_bans\{jail="login"\} 1$/m);
    assert.match(text, /^# TYPE app_jk_failures_total counter$/m);
    await keeper.unban('203.0.113.1');
    text = metrics.text();
    assert.match(text, /^app_jk_unbans_total\{jail="login",cause="manual",origin="local"\} 1$/m);
    assert.doesNotMatch(text, /^app_jk_active_bans\{/m);
    metrics.close();
    await fail('203.0.113.3');
    assert.match(
      metrics.text(),
      /^app_jk_failures_total\{jail="login"\} 3$/m,
      'closed metrics stop counting',
    );
    await keeper.close();
  });

  it("counts the site's broken links per jail (sharedPaths), without naming paths in labels", async () => {
    const keeper = createJailkeeper({
      jails: { scanners: { statuses: [404], sharedPaths: { networks: 3 } } },
      logger: { info() {}, warn() {}, error() {} },
    });
    const metrics = createMetrics(keeper);
    const miss = (client: string, path: string) =>
      keeper.observe({ client, method: 'GET', route: null, path, status: 404 });
    await miss('198.51.100.1', '/fonts/a.woff2');
    await miss('198.51.100.2', '/fonts/a.woff2'); // the same /24: one network
    assert.doesNotMatch(metrics.text(), /^jailkeeper_broken_links\{/m);
    await miss('203.0.113.1', '/fonts/a.woff2');
    await miss('192.0.2.1', '/fonts/a.woff2');
    assert.match(metrics.text(), /^jailkeeper_broken_links\{jail="scanners"\} 1$/m);
    assert.deepEqual(
      keeper.brokenLinks().map((l) => [l.jail, l.path, l.networks]),
      [['scanners', '/fonts/a.woff2', 3]],
    );
    metrics.close();
    await keeper.close();
  });

  it('registers the same figures with prom-client', async () => {
    const keeper = createJailkeeper({ jails });
    const registry = new promClient.Registry();
    createMetrics(keeper).register(promClient, registry);
    await keeper.observe({ client: '198.51.100.1', method: 'POST', path: '/x', status: 401 });
    await keeper.observe({ client: '198.51.100.1', method: 'POST', path: '/x', status: 401 });
    const text = await registry.metrics();
    assert.match(text, /^jailkeeper_failures_total\{jail="login"\} 2$/m);
    assert.match(text, /^jailkeeper_bans_total\{jail="login"\} 1$/m);
    assert.match(text, /^jailkeeper_store_degraded 0$/m);
    // a second scrape does not double the counters
    assert.match(await registry.metrics(), /^jailkeeper_failures_total\{jail="login"\} 2$/m);
    await keeper.close();
  });

  it('refuses a prefix that is not a Prometheus name', () => {
    const keeper = createJailkeeper({ jails });
    assert.throws(() => createMetrics(keeper, { prefix: 'bad-prefix' }), /prefix/);
    return keeper.close();
  });
});
