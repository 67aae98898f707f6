import type { Logger } from '@jailkeeper/core';
import { JailkeeperModule } from '@jailkeeper/nestjs';
import { type DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from './auth.module.js';
import { LiveGateway } from './live.gateway.js';

@Module({})
export class AppModule {
  static forRoot({ logger }: { logger?: Logger } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        JailkeeperModule.forRoot({
          keeper: {
            jails: {
              login: { statuses: [401], paths: ['/auth/login'], maxRetry: 3, findTime: '10m', banTime: '1h' },
            },
            logger,
          },
        }),
        AuthModule,
      ],
      providers: [LiveGateway],
    };
  }
}
