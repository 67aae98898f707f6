// Run after `tsc -b` by each package's build and prepack (in the package's folder): writes a
// CommonJS twin of every declaration file, dist/**/*.d.cts, for the `require` condition of
// `exports`. TypeScript reads a package's .d.ts as ES module declarations (the package is
// "type": "module"), so a CommonJS consumer compiled with `module: node16` or `nodenext` fails
// with TS1479 although Node 20.19+ can require() the ES module itself. The twins are the same
// declarations read as CommonJS; their relative imports point at the twins (`./x.js` becomes
// `./x.cjs`, which TypeScript resolves to `./x.d.cts`), and the other @jailkeeper packages they
// import resolve through those packages' own `require` condition. The JavaScript stays ESM only.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = join(process.cwd(), 'dist');

/** Every file under a folder. */
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

// Relative specifiers in import and export declarations and in import() types.
const RELATIVE = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*?)\.js\2/g;

const files = walk(dist);
// Twins of declarations that are gone (a renamed file) must not ship.
for (const file of files) if (file.endsWith('.d.cts')) rmSync(file);
let written = 0;
for (const file of files) {
  if (!file.endsWith('.d.ts')) continue;
  const text = readFileSync(file, 'utf8').replace(RELATIVE, '$1$2$3.cjs$2');
  writeFileSync(`${file.slice(0, -'.d.ts'.length)}.d.cts`, text);
  written++;
}
if (written === 0) {
  console.error(`cjs-types: no declaration files under ${dist}; run tsc -b first.`);
  process.exit(1);
}
