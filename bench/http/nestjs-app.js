// The bench app (app.js) on NestJS 11, on its default platform (@nestjs/platform-express), built
// without listening. Decorators are applied as TypeScript's emit would apply them.
// Configurations: bare; noop (one no-op Express middleware under Nest: where jailkeeper's module
// mounts its own); jailkeeper* (JailkeeperModule.forRoot with the keeper of app.js); throttler
// (@nestjs/throttler's ThrottlerGuard as an APP_GUARD, its documented setup, memory storage).
import 'reflect-metadata';
import { JailkeeperModule } from '@jailkeeper/nestjs';
import { Controller, Get, Module, Post, Req, UnauthorizedException } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { SkipThrottle, ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';

/** Returns { server, listen, close } for buildApp(). */
export async function buildNestApp({
  config,
  keeper,
  block,
  limit,
  windowMs,
  failuresOnly,
  checkDelay,
  countRun,
}) {
  class Routes {
    hello() {
      return 'hello';
    }
    async login(req) {
      countRun(req.socket.remoteAddress);
      if (checkDelay !== undefined) await new Promise((resolve) => setTimeout(resolve, checkDelay));
      throw new UnauthorizedException('wrong password');
    }
  }
  const decorate = (name, ...decorators) =>
    Reflect.decorate(
      decorators,
      Routes.prototype,
      name,
      Object.getOwnPropertyDescriptor(Routes.prototype, name),
    );
  // @nestjs/throttler counts every request of a route: where only failures should count (mixed,
  // flood), it guards the login route only (its login-protection pattern), so clean clients pass.
  decorate('hello', Get(), ...(config === 'throttler' && failuresOnly ? [SkipThrottle()] : []));
  Req()(Routes.prototype, 'login', 0);
  decorate('login', Post('login'));
  Controller()(Routes);

  const imports = [];
  const providers = [];
  if (keeper) {
    imports.push(
      JailkeeperModule.forRoot({
        keeper,
        block,
        ...(block === 'drop' ? { guard: { upgrade: true, connection: true } } : {}),
      }),
    );
  }
  if (config === 'throttler') {
    imports.push(ThrottlerModule.forRoot([{ ttl: windowMs, limit }]));
    providers.push({ provide: APP_GUARD, useClass: ThrottlerGuard });
  }
  class AppModule {}
  Module({ imports, controllers: [Routes], providers })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  const express = app.getHttpAdapter().getInstance();
  express.disable('x-powered-by');
  express.disable('etag');
  if (config === 'noop') app.use((_req, _res, next) => next());
  await app.init();
  return {
    server: app.getHttpServer(),
    listen: () => app.listen(0, '127.0.0.1'),
    close: () => app.close(),
  };
}
