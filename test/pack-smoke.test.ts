import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// Packs each publishable package as pnpm would publish it, installs the tarball into a bare folder
// (its dependencies linked from the workspace: no network), and loads it from CommonJS and ESM.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'jk-pack-'));
after(() => rmSync(work, { recursive: true, force: true }));

const pnpm = (args: string[], cwd: string) => {
  const execPath = process.env.npm_execpath ?? '';
  if (/pnpm/.test(execPath))
    return execFileSync(process.execPath, [execPath, ...args], { cwd, encoding: 'utf8' });
  return execFileSync('npx', ['--yes', 'pnpm@10.34.9', ...args], { cwd, encoding: 'utf8' });
};

interface Manifest {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  exports?: Record<string, unknown>;
}

const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({
    dir: join(root, 'packages', dir),
    manifest: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest,
  }))
  .filter((p) => !p.manifest.private);

/** Installs a packed package and, recursively, its dependencies (workspace ones packed too). */
function install(pkg: { dir: string; manifest: Manifest }, into: string, done = new Set<string>()): void {
  if (done.has(pkg.manifest.name)) return;
  done.add(pkg.manifest.name);
  const out = join(work, 'tarballs');
  mkdirSync(out, { recursive: true });
  pnpm(['pack', '--pack-destination', out], pkg.dir);
  const tarball = readdirSync(out).find((f) =>
    f.startsWith(pkg.manifest.name.replace('@', '').replace('/', '-')),
  );
  assert.ok(tarball, `packed ${pkg.manifest.name}`);
  const target = join(into, 'node_modules', pkg.manifest.name);
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', join(out, tarball), '-C', target, '--strip-components=1']);
  const packed = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')) as Manifest;
  for (const [dep, range] of Object.entries(packed.dependencies ?? {})) {
    assert.ok(!range.startsWith('workspace:'), `${pkg.manifest.name} publishes ${dep}@${range}`);
    const sibling = packages.find((p) => p.manifest.name === dep);
    if (sibling) install(sibling, into, done);
    else linkFrom(pkg.dir, dep, into);
  }
  // The app brings the framework (NestJS, Hono): required peers come from the workspace.
  for (const dep of Object.keys(packed.peerDependencies ?? {})) {
    if (packed.peerDependenciesMeta?.[dep]?.optional !== true) linkFrom(pkg.dir, dep, into);
  }
}

function linkFrom(dir: string, dep: string, into: string): void {
  const link = join(into, 'node_modules', dep);
  if (existsSync(link)) return;
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(realpathSync(join(dir, 'node_modules', dep)), link);
}

describe('packed packages load from CommonJS and ESM', () => {
  for (const pkg of packages) {
    it(pkg.manifest.name, () => {
      const app = join(work, pkg.manifest.name.replace('/', '_'));
      mkdirSync(app, { recursive: true });
      install(pkg, app);
      const name = JSON.stringify(pkg.manifest.name);
      const cjs = execFileSync(
        process.execPath,
        [
          '--no-warnings',
          '-e',
          `const m = require(${name}); console.log(JSON.stringify(Object.keys(m).sort()))`,
        ],
        { cwd: app, encoding: 'utf8' },
      );
      const esm = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${name}); console.log(JSON.stringify(Object.keys(m).sort()))`,
        ],
        { cwd: app, encoding: 'utf8' },
      );
      const cjsKeys = JSON.parse(cjs) as string[];
      assert.ok(cjsKeys.length > 0, 'exports something');
      assert.deepEqual(
        JSON.parse(esm),
        cjsKeys.filter((k) => k !== '__esModule' && k !== 'module.exports'),
      );
      const files = execFileSync('find', ['.', '-type', 'f'], {
        cwd: join(app, 'node_modules', pkg.manifest.name),
        encoding: 'utf8',
      });
      assert.ok(!/\.test\.|\/src\//.test(files), 'ships dist only');
      assert.match(files, /README\.md/);
      assert.match(files, /LICENSE/, 'ships its license');
      if (pkg.manifest.name === '@jailkeeper/core') {
        assert.match(files, /docs\/errors\.md/, 'the docs the error messages name, for reading offline');
      }
      const manifest = pkg.manifest as Manifest & { repository?: { directory?: string }; scripts?: object };
      assert.equal(manifest.repository?.directory, `packages/${pkg.dir.split('/').pop()}`);
    });
  }
});
