// Run after `tsc -b tsconfig.json tsconfig.cjs.json` by each package's build and prepack (in the
// package's folder). The package is "type": "module": dist/ holds its ES modules, and dist/cjs/ the
// same sources compiled a second time by tsc as CommonJS (tsconfig.cjs.json), with their own
// declarations. This file marks dist/cjs/ as CommonJS, so that Node loads its .js files with
// require() (no require(esm) needed, nor a transform in Jest) and TypeScript reads its .d.ts files
// as CommonJS declarations, matching the JavaScript beside them.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const cjs = join(process.cwd(), 'dist', 'cjs');
if (!existsSync(join(cjs, 'index.js'))) {
  console.error(
    `cjs-package: no CommonJS build in ${cjs}; run tsc -b tsconfig.json tsconfig.cjs.json first.`,
  );
  process.exit(1);
}
writeFileSync(join(cjs, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
