import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperError } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import inject from 'light-my-request';
import {
  JAILKEEPER_ROUTE,
  JailkeeperExempt,
  JailkeeperJails,
  JailkeeperModule,
  JailkeeperService,
} from '../src/index.js';

const keeper = createJailkeeper({
  jails: { login: { statuses: [401], paths: ['/login'] }, forbidden: { statuses: [403] } },
  logger: quietLogger,
});
after(() => keeper.close());

class Home {
  page() {
    return 'home';
  }
  ws() {
    return 'ws';
  }
}
const descriptor = (name: string) => Object.getOwnPropertyDescriptor(Home.prototype, name);
Reflect.decorate([Get()], Home.prototype, 'page', descriptor('page'));
Reflect.decorate([Get('ws'), JailkeeperExempt()], Home.prototype, 'ws', descriptor('ws'));
Controller()(Home);
JailkeeperJails('login')(Home);

describe('@jailkeeper/nestjs', () => {
  it('decorators set metadata Nest’s Reflector reads: the handler’s own over its controller’s', () => {
    const reflector = new Reflector();
    const of = (name: 'page' | 'ws') =>
      reflector.getAllAndOverride(JAILKEEPER_ROUTE, [Home.prototype[name], Home]);
    assert.deepEqual(of('page'), { jails: ['login'] });
    assert.equal(of('ws'), false);
  });

  it('works from Test.createTestingModule: a banned client is refused', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [JailkeeperModule.forRoot({ keeper })],
      controllers: [Home],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const client = app.get(JailkeeperService);
    assert.equal(client.keeper, keeper);
    const express = app.getHttpAdapter().getInstance();

    await keeper.ban('198.51.100.4');
    const refused = await inject(express, { url: '/', remoteAddress: '198.51.100.4' });
    assert.equal(refused.statusCode, 403);
    const served = await inject(express, { url: '/', remoteAddress: '198.51.100.5' });
    assert.equal(served.statusCode, 200);
    await app.close();
  });

  it('options are checked at startup: unknown keys and a missing keeper are coded errors', async () => {
    for (const [options, code] of [
      [{ keeper, blok: 'drop' }, 'JK_ERR_UNKNOWN_OPTION'],
      [{}, 'JK_ERR_INVALID_OPTION'],
      [{ keeper, guard: { upgrades: true } }, 'JK_ERR_UNKNOWN_OPTION'],
    ] as const) {
      class AppModule {}
      Module({ imports: [JailkeeperModule.forRoot(options as never)] })(AppModule);
      await assert.rejects(
        NestFactory.create(AppModule, { logger: false, abortOnError: false }),
        (e: JailkeeperError) => e.code === code,
        JSON.stringify(options),
      );
    }
  });
});
