import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperConfigError, type JailkeeperError } from '@jailkeeper/core';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { jailkeeperPlugin } from '../src/index.js';

const keeper = createJailkeeper({ jails: { login: { statuses: [401], paths: ['/login'] } } });

for (const [name, Fastify] of [
  ['Fastify 5', fastify5],
  ['Fastify 4', fastify4 as unknown as typeof fastify5],
] as const) {
  describe(`the Fastify plugin: ${name}`, () => {
    it('needs a keeper', async () => {
      const app = Fastify();
      await assert.rejects(async () => {
        await app.register(jailkeeperPlugin, {} as never);
        await app.ready();
      }, TypeError);
    });
    it('rejects unknown options', async () => {
      const app = Fastify();
      await assert.rejects(
        async () => {
          await app.register(jailkeeperPlugin, { keeper, blok: 'drop' } as never);
          await app.ready();
        },
        (e: JailkeeperConfigError) => e.code === 'JK_ERR_UNKNOWN_OPTION',
      );
    });
    it('decorates the instance once and validates route config when the route is declared', async () => {
      const app = Fastify();
      await app.register(jailkeeperPlugin, { keeper, guard: false });
      assert.equal(app.jailkeeper, keeper);
      assert.throws(
        () => app.get('/x', { config: { jailkeeper: { jails: ['ssh'] } } }, async () => 'x'),
        (e: JailkeeperError) => e.code === 'JK_ERR_UNKNOWN_JAIL',
      );
      app.get('/ok', { config: { jailkeeper: false } }, async () => 'ok');
      await app.ready();
      await app.close();
    });
    it('is named for fastify-plugin, so it can be depended on', () => {
      const meta = (jailkeeperPlugin as unknown as Record<symbol, { name: string }>)[
        Symbol.for('plugin-meta')
      ];
      assert.equal(meta?.name, '@jailkeeper/fastify');
    });
  });
}
