// The adapter toolkit, `@jailkeeper/core/adapter`: what every framework adapter (and every package
// built on the engine) shares, so that an adapter is only framework glue. An adapter starts from
// createAdapterKit(); the pieces below it are exported for packages that need only one of them.
export { toDurationMs } from '../config/duration.js';
export { checkKeys, positiveInteger } from '../config/validate.js';
export type { Admission, Targets } from '../engine/admission.js';
export type { Banned } from '../engine/ban-index.js';
export type { GuardOptions } from '../engine/connections.js';
export { notHeld, type Slots } from '../engine/slots.js';
export { describe, invalid, JailkeeperConfigError } from '../errors.js';
export type { ProxyTrust } from '../identity/client-ip.js';
export type { ClientIdentity } from '../identity/identity.js';
export { canonicalIp } from '../identity/ip.js';
export { networkList } from '../identity/ip-set.js';
export { normalizePath, pathOf } from '../paths/normalize-path.js';
export { canonicalRoute } from '../paths/path-pattern.js';
export type { AdapterAbilities } from './admission.js';
export { Attempt } from './attempt.js';
export { type CountedRequest, countedMethod } from './counting.js';
export { AdapterKit, type AdapterKitInput, createAdapterKit } from './kit.js';
export {
  type AdapterOptions,
  type RefusalInfo,
  type RefusalOptions,
  type RefusalWriter,
  type ResolvedRefusal,
  retryAfterSeconds,
} from './refusal.js';
export { onResponseClose } from './response-close.js';
export { NO_JAILS, type RouteConfig, type RouteJails } from './route-config.js';
