import type { Server } from 'node:http';
import { type Jailkeeper, JailkeeperConfigError } from '@jailkeeper/core';
import type { ProxyTrust } from '@jailkeeper/core/adapter';

/** The part of an Express app (4 or 5) read here. */
interface ExpressApp {
  get(setting: string): unknown;
}

function isApp(value: unknown): value is ExpressApp {
  return (
    (typeof value === 'function' || (typeof value === 'object' && value !== null)) &&
    typeof (value as { get?: unknown }).get === 'function' &&
    typeof (value as { set?: unknown }).set === 'function' &&
    typeof (value as { handle?: unknown }).handle === 'function'
  );
}

/** The Express app a server was created with (`app.listen()`, `http.createServer(app)`), if any. */
export function serverApp(server: Server): unknown {
  return server.listeners('request').find(isApp);
}

/**
 * The compiled `trust proxy` function of an Express app, for `trustedProxies: 'express'`: the very
 * function `req.ip` uses (`app.get('trust proxy fn')`). An app that trusts every peer (`true` or a
 * hop count) is refused, as `trustedProxies` would refuse it, unless the keeper has
 * `dangerouslyTrustAllProxies`.
 */
export function appTrust(keeper: Jailkeeper, app: unknown): ProxyTrust {
  const fn = isApp(app) ? app.get('trust proxy fn') : undefined;
  if (typeof fn !== 'function') {
    throw new JailkeeperConfigError(
      'JK_ERR_EXPRESS_TRUST',
      'trustedProxies',
      `trustedProxies is 'express', but ${isApp(app) ? "the app has no compiled trust proxy setting (app.get('trust proxy fn'))" : 'no Express app was found (pass jk.guard(server, { app }))'}.`,
    );
  }
  const setting = (app as ExpressApp).get('trust proxy');
  if (
    (setting === true || typeof setting === 'number') &&
    !keeper.options.clientIp.dangerouslyTrustAllProxies
  ) {
    throw new JailkeeperConfigError(
      'JK_ERR_UNSAFE_TRUST',
      'trustedProxies',
      `trustedProxies is 'express' and the app's trust proxy is ${String(setting)}${setting === true ? '' : ' (a hop count)'}, which believes a forwarding header from any client that reaches the app directly: any client could choose its own address, dodge its bans and get others banned. Set trust proxy to your proxies' addresses, or set dangerouslyTrustAllProxies: true on the keeper if every request passes a proxy that overwrites X-Forwarded-For.`,
    );
  }
  return fn as ProxyTrust;
}

/**
 * The trust functions of the apps a middleware serves, each looked up once: a request of the app
 * seen last costs one comparison.
 */
export class AppTrusts {
  readonly #keeper: Jailkeeper;
  readonly #byApp = new WeakMap<object, ProxyTrust>();
  #lastApp: unknown;
  #lastTrust: ProxyTrust | undefined;

  constructor(keeper: Jailkeeper) {
    this.#keeper = keeper;
  }

  of(app: unknown): ProxyTrust {
    if (app === this.#lastApp && this.#lastTrust !== undefined) return this.#lastTrust;
    let trust = isApp(app) ? this.#byApp.get(app) : undefined;
    if (trust === undefined) {
      trust = appTrust(this.#keeper, app);
      this.#byApp.set(app as object, trust);
    }
    this.#lastApp = app;
    this.#lastTrust = trust;
    return trust;
  }
}
