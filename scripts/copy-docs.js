// Run by @jailkeeper/core's prepack: the docs the error messages name ship inside the package, so a
// user of the tarball can open them offline (node_modules/@jailkeeper/core/docs/errors.md).
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(process.cwd(), 'docs');
mkdirSync(target, { recursive: true });
for (const file of readdirSync(join(root, 'docs'))) {
  if (file.endsWith('.md')) copyFileSync(join(root, 'docs', file), join(target, file));
}
