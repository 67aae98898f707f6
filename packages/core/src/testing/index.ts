// `@jailkeeper/core/testing`: the store conformance suite (run it against a store of your own, for
// another database) and the manual clock. Imports node:test, so it is for test files only.
export { createManualClock, type ManualClock } from '../clock.js';
export { quietLogger, recordingLogger, until } from './helpers.js';
export {
  contextFor,
  freshClient,
  record,
  rule,
  type StoreFactory,
  storeConformance,
} from './store-conformance.js';
