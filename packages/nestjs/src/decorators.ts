import type { RouteConfig } from '@jailkeeper/core/adapter';
import { SetMetadata } from '@nestjs/common';

/**
 * The metadata key of jailkeeper's route config, on a handler or a controller: readable with
 * Nest's `Reflector` (`getAllAndOverride(JAILKEEPER_ROUTE, [handler, controller])`).
 */
export const JAILKEEPER_ROUTE = 'jailkeeper:route';

/**
 * jailkeeper's config of a handler or of every handler of a controller (the handler's own
 * wins): `false` counts nothing there; `{ jails: ['login'] }` counts only in those jails.
 * Validated at startup (JK_ERR_INVALID_ROUTE_CONFIG, JK_ERR_UNKNOWN_JAIL).
 * @example
 * \@Post('login') \@JailkeeperRoute({ jails: ['login'] }) login() {}
 */
export function JailkeeperRoute(config: RouteConfig): ClassDecorator & MethodDecorator {
  return SetMetadata(JAILKEEPER_ROUTE, config);
}

/**
 * Responses of this handler (or of every handler of this controller) never count: its 4xx are
 * normal, like a WebSocket handshake refused by design.
 * @example
 * \@Controller('ws') \@JailkeeperExempt() export class HandshakeController {}
 */
export function JailkeeperExempt(): ClassDecorator & MethodDecorator {
  return JailkeeperRoute(false);
}

/**
 * Responses of this handler (or controller) count only in these jails.
 * @example
 * \@Get('me') \@JailkeeperJails('login') me() {}
 */
export function JailkeeperJails(...jails: string[]): ClassDecorator & MethodDecorator {
  return JailkeeperRoute({ jails });
}
