// The adapter toolkit, `@jailkeeper/core/adapter`: what every framework adapter (and every package
// built on the engine) shares, so that an adapter is only framework glue.
export { toDurationMs } from '../config/duration.js';
export { checkKeys, positiveInteger } from '../config/validate.js';
export { NOT_BANNED } from '../engine/ban-index.js';
export { ConnectionTracker, guardServer } from '../engine/connections.js';
export { describe, invalid } from '../errors.js';
export { networkList } from '../identity/ip-set.js';
export { normalizePath, pathOf } from '../paths/normalize-path.js';
export {
  type AdapterAbilities,
  afterSettling,
  requireKeeper,
  responseCounted,
  responseOpened,
} from './admission.js';
export { countedMethod, countResponse } from './counting.js';
export {
  type RefusalOptions,
  type RefusalWriter,
  type ResolvedRefusal,
  resolveRefusal,
  retryAfterSeconds,
  writeRefusal,
} from './refusal.js';
export { compileRouteConfig, NO_JAILS, type RouteConfig, type RouteJails } from './route-config.js';
