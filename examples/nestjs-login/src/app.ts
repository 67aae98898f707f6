import 'reflect-metadata';
import { Jailkeeper, type Logger } from '@jailkeeper/core';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { AppModule } from './app.module.js';

export async function start({
  port = 3004,
  host = '127.0.0.1',
  logger,
}: {
  port?: number;
  host?: string;
  logger?: Logger;
} = {}) {
  const app = await NestFactory.create(AppModule.forRoot({ logger }), { logger: false });
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(port, host);
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    keeper: app.get(Jailkeeper),
    url: `http://${host}:${address.port}`,
    close: () => app.close(),
  };
}
