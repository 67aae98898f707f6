// The ES module build's declarations are the CommonJS build's (the same sources, one copy shipped).
export * from '../cjs/index.js';
export { jailkeeperPlugin as default } from '../cjs/index.js';
