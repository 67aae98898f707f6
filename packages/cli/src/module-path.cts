// This module's own file, in both builds: a .cts file compiles to CommonJS in the ES module build as
// well, where `__filename` exists (`import.meta` does not exist in the CommonJS build).
/** The path of this file: where the CLI finds its package.json from. */
const modulePath: string = __filename;
export = modulePath;
