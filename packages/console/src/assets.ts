import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import modulePath from './module-path.cjs';

/** A file the console serves: read once at setup, never from a path the request names. */
export interface ConsoleAsset {
  readonly body: string;
  readonly type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

function typeOf(file: string): string | undefined {
  const dot = file.lastIndexOf('.');
  return dot === -1 ? undefined : TYPES[file.slice(dot)];
}

const requireHere = createRequire(modulePath);
/** The entry points of the two libraries the page loads (named here so that tools see the dependency). */
const ENTRIES: Record<string, () => string> = {
  'lit-html': () => requireHere.resolve('lit-html'),
  uplot: () => requireHere.resolve('uplot'),
};

/** The directory of an installed package (found from its entry point, whatever its exports map). */
function packageDir(name: string, from = dirname((ENTRIES[name] as () => string)())): string {
  let dir = from;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`Cannot find the package directory of ${name}.`);
    dir = up;
  }
}

/**
 * Every file the console serves, by path below `/console/`: this package's assets folder, and the
 * two libraries it uses (lit-html for escaping templates, uPlot for charts) from their npm
 * packages, so nothing comes from a CDN. Read once, at setup.
 * @example
 * const assets = loadConsoleAssets();
 * assets.get('index.html')?.type; // 'text/html; charset=utf-8'
 */
export function loadConsoleAssets(): Map<string, ConsoleAsset> {
  const assets = new Map<string, ConsoleAsset>();
  // From the package's root: the ES module build is in dist/, the CommonJS one in cjs/.
  const root = join(packageDir('@jailkeeper/console', dirname(modulePath)), 'assets');
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const type = typeOf(entry.name);
        if (type !== undefined) {
          assets.set(relative(root, path).split(sep).join('/'), { body: readFileSync(path, 'utf8'), type });
        }
      }
    }
  };
  walk(root);
  const vendor = (as: string, pkg: string, file: string) => {
    const type = typeOf(file) as string;
    // The source map is not shipped with it: drop the comment that would make devtools ask for it.
    const body = readFileSync(join(packageDir(pkg), file), 'utf8').replace(
      /\n\/\/# sourceMappingURL=\S+\s*$/,
      '\n',
    );
    assets.set(`vendor/${as}`, { body, type });
  };
  vendor('lit-html.js', 'lit-html', 'lit-html.js');
  vendor('uPlot.esm.js', 'uplot', 'dist/uPlot.esm.js');
  vendor('uPlot.min.css', 'uplot', 'dist/uPlot.min.css');
  return assets;
}
