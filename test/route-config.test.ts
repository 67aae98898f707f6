/**
 * The adapters agree on every route-config mistake: the same bad config, fed to Express's
 * `jk.route()` and to a Fastify route's `config.jailkeeper`, fails with the same code and the same
 * message, at setup. A config that counts is honoured the same way too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, JailkeeperError } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeper as honoJailkeeper } from '@jailkeeper/hono';
import { JailkeeperModule, JailkeeperRoute } from '@jailkeeper/nestjs';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { decorate } from './adapters-harness.js';

const keeper = createJailkeeper({
  jails: { login: { statuses: [401], paths: ['/login'] }, forbidden: { statuses: [403] } },
  logger: quietLogger,
});

const BAD: ReadonlyArray<[string, unknown, string]> = [
  ['an empty object', {}, 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['jails as a string', { jails: 'login' }, 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['an empty jails list', { jails: [] }, 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['an unknown key', { jail: ['login'] }, 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['true', true, 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['null', null, 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['a string', 'login', 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['an array', ['login'], 'JK_ERR_INVALID_ROUTE_CONFIG'],
  ['an unknown jail', { jails: ['logn'] }, 'JK_ERR_UNKNOWN_JAIL'],
  ['a jail that is not a string', { jails: [5] }, 'JK_ERR_UNKNOWN_JAIL'],
];

function expressError(config: unknown): unknown {
  const jk = jailkeeper(keeper);
  try {
    jk.route(config as never);
  } catch (error) {
    return error;
  }
  return undefined;
}

function honoError(config: unknown): unknown {
  try {
    honoJailkeeper(keeper).route(config as never);
  } catch (error) {
    return error;
  }
  return undefined;
}

/** A Nest controller decorated with the config: the mistake fails app.init(), naming the handler. */
async function nestError(platform: 'express' | 'fastify', config: unknown): Promise<unknown> {
  class Routes {
    x() {
      return 'x';
    }
  }
  decorate(
    Routes.prototype,
    'x',
    Get('x'),
    ...(config === undefined ? [] : [JailkeeperRoute(config as never)]),
  );
  Controller()(Routes);
  class AppModule {}
  Module({ imports: [JailkeeperModule.forRoot({ keeper })], controllers: [Routes] })(AppModule);
  const options = { logger: false, abortOnError: false } as const;
  const app =
    platform === 'fastify'
      ? await NestFactory.create(AppModule, new FastifyAdapter(), options)
      : await NestFactory.create(AppModule, options);
  try {
    await app.init();
  } catch (error) {
    return error;
  } finally {
    await app.close();
  }
  return undefined;
}

async function fastifyError(fastify: typeof fastify5, config: unknown): Promise<unknown> {
  const app = fastify();
  try {
    await app.register(jailkeeperPlugin, { keeper });
    app.get('/x', { config: { jailkeeper: config as never } }, async () => 'x');
    await app.ready();
  } catch (error) {
    return error;
  } finally {
    await app.close();
  }
  return undefined;
}

describe('route config: the same mistake reads the same on every adapter', () => {
  for (const [name, config, code] of BAD) {
    it(`${name}: ${code} with one message`, async () => {
      const errors = [
        expressError(config),
        await fastifyError(fastify5, config),
        await fastifyError(fastify4 as unknown as typeof fastify5, config),
        honoError(config),
      ];
      for (const error of errors) {
        assert.ok(error instanceof JailkeeperError, `a JailkeeperError, got ${String(error)}`);
        assert.equal((error as JailkeeperError).code, code);
      }
      const messages = new Set(errors.map((e) => (e as Error).message));
      assert.equal(messages.size, 1, [...messages].join('\n'));
      // NestJS: the same message, naming the decorated handler where the others say "route config".
      const expected = [...messages][0]?.replace('jailkeeper route config', '@JailkeeperRoute() on Routes.x');
      for (const platform of ['express', 'fastify'] as const) {
        const error = await nestError(platform, config);
        assert.ok(error instanceof JailkeeperError, `${platform}: a JailkeeperError, got ${String(error)}`);
        assert.equal((error as Error).message, expected);
      }
    });
  }

  it('valid configs are accepted by every adapter', async () => {
    for (const config of [false, { jails: ['login'] }, { jails: ['login', 'forbidden'] }, undefined]) {
      assert.equal(expressError(config), undefined);
      assert.equal(await fastifyError(fastify5, config), undefined);
      assert.equal(await fastifyError(fastify4 as unknown as typeof fastify5, config), undefined);
      assert.equal(honoError(config), undefined);
      assert.equal(await nestError('express', config), undefined);
      assert.equal(await nestError('fastify', config), undefined);
    }
  });
});
