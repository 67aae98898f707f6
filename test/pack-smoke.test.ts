import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NO_REDIS } from './needs.js';
import { type Block, blocksOf, documents, runBlock, TOKEN, where, writeTsconfig } from './readme-blocks.js';
import { startRedis } from './redis-server.js';

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

/**
 * Each package packed as pnpm would publish it, all of them by one `pnpm -r pack` the first time a
 * tarball is asked for (one pnpm process, not one per package): the tarball's path.
 */
let tarballs: string[] | undefined;
function pack(pkg: { dir: string; manifest: Manifest }): string {
  const out = join(work, 'tarballs');
  if (tarballs === undefined) {
    mkdirSync(out, { recursive: true });
    pnpm(['-r', '--filter', './packages/*', 'pack', '--pack-destination', out], root);
    tarballs = readdirSync(out);
  }
  const prefix = `${pkg.manifest.name.replace('@', '').replace('/', '-')}-`;
  const tarball = tarballs.find((f) => f.startsWith(prefix) && /^\d/.test(f.slice(prefix.length)));
  assert.ok(tarball, `packed ${pkg.manifest.name}`);
  return join(out, tarball);
}

/** Links a package from the workspace (a dependency that is not ours, or a peer) into an app. */
function link(name: string, from: string, into: string): void {
  const target = join(into, 'node_modules', name);
  if (existsSync(target)) return;
  mkdirSync(dirname(target), { recursive: true });
  symlinkSync(realpathSync(join(from, 'node_modules', name)), target);
}

/** Installs a packed package and, recursively, its dependencies (workspace ones packed too). */
function install(pkg: { dir: string; manifest: Manifest }, into: string, done = new Set<string>()): void {
  if (done.has(pkg.manifest.name)) return;
  done.add(pkg.manifest.name);
  const tarball = pack(pkg);
  const target = join(into, 'node_modules', pkg.manifest.name);
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  const packed = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')) as Manifest;
  for (const [dep, range] of Object.entries(packed.dependencies ?? {})) {
    assert.ok(!range.startsWith('workspace:'), `${pkg.manifest.name} publishes ${dep}@${range}`);
    const sibling = packages.find((p) => p.manifest.name === dep);
    if (sibling) install(sibling, into, done);
    else link(dep, pkg.dir, into);
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
      // Every file the exports map names ships: the ES module build and the CommonJS one, each with
      // its declarations, and cjs/ marked CommonJS so that Node and TypeScript read it as such.
      const named = [...JSON.stringify(pkg.manifest.exports).matchAll(/:"(\.\/[^"]+)"/g)].map((m) => m[1]);
      for (const file of named) assert.ok(files.includes(`${file}\n`), `ships ${file}`);
      assert.ok(
        named.some((f) => f?.startsWith('./cjs/') && f.endsWith('.d.ts')),
        'names CommonJS declarations',
      );
      const marker = join(app, 'node_modules', pkg.manifest.name, 'cjs', 'package.json');
      assert.deepEqual(JSON.parse(readFileSync(marker, 'utf8')), { type: 'commonjs' });
      assert.ok(!/\.tsbuildinfo/.test(files), 'ships no build state');
      // Declarations no export reaches are left out (core's internal modules): every one that a
      // shipped declaration imports ships.
      for (const declaration of files.split('\n').filter((f) => f.endsWith('.d.ts'))) {
        const text = readFileSync(join(app, 'node_modules', pkg.manifest.name, declaration), 'utf8');
        for (const [, spec] of text.matchAll(/(?:from|import\()\s*['"](\.[^'"]+)\.js['"]/g)) {
          const target = `./${join(dirname(declaration), `${spec}.d.ts`)}`;
          assert.ok(files.includes(`${target}\n`), `${declaration} imports ${target}, which ships`);
        }
      }
      // A reader who has only the package: every link of its README leads somewhere, to a page on
      // the web or to a file the package ships (the ops README's console screenshots).
      const readme = readFileSync(join(app, 'node_modules', pkg.manifest.name, 'README.md'), 'utf8');
      for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:|#)/.test(target as string)) continue;
        const file = (target as string).replace(/#.*$/, '');
        assert.ok(files.includes(`./${file}\n`), `its README links ${target}, which the package ships`);
      }
      const manifest = pkg.manifest as Manifest & { repository?: { directory?: string }; scripts?: object };
      assert.equal(manifest.repository?.directory, `packages/${pkg.dir.split('/').pop()}`);
    });
  }
});

// A TypeScript app as a user writes one, compiled by the real compiler against the installed
// tarballs (skipLibCheck off, so every declaration file is checked), then run. The same source
// is compiled as an ES module (module nodenext) and as CommonJS (module node16): a CommonJS
// consumer used to fail with TS1479, the packages' declarations being ES module ones.
const CONSUMER = `import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BanEvent, createJailkeeper, type Duration, type JailkeeperOptions } from '@jailkeeper/core';
import type { AdapterOptions } from '@jailkeeper/core/adapter';
import type { ManualClock } from '@jailkeeper/core/testing';
import { checkConfig } from '@jailkeeper/cli';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import defaultPlugin from '@jailkeeper/fastify';
import { createAdminApi, createMetrics } from '@jailkeeper/ops';
import { createRedisStore, type RedisStoreOptions } from '@jailkeeper/redis';
import express from 'express';
import Fastify from 'fastify';

const findTime: Duration = '10m';
// @ts-expect-error a misspelt unit is a compile error (unused, this directive would fail the build)
const misspelt: Duration = '10mins';
const options: JailkeeperOptions = {
  jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 2, findTime, banTime: '1h' } },
};
const prefix: RedisStoreOptions['prefix'] = 'jk:';
type Refusals = AdapterOptions<unknown, unknown>['onRefused'];

/** A POST on a connection of its own: the ban closes the client's open ones. */
function post(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const keeper = createJailkeeper(options);
  await keeper.ready;
  const banned = new Promise<BanEvent>((resolve) => keeper.on('ban', resolve));
  const app = express();
  const jk = jailkeeper(keeper, {
    onRefused: (_req, res, info) => {
      res.status(info.status).json({ refused: info.reason });
    },
  });
  app.use(jk);
  app.post('/login', (_req, res) => {
    res.status(401).end();
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = \`http://127.0.0.1:\${(server.address() as AddressInfo).port}/login\`;
  const statuses: number[] = [];
  let body: unknown;
  let ban: BanEvent;
  try {
    for (let i = 0; i < 2; i++) statuses.push((await post(url)).status);
    ban = await banned;
    const refused = await post(url);
    statuses.push(refused.status);
    body = JSON.parse(refused.body);
  } finally {
    server.close();
  }

  const fastify = Fastify();
  await fastify.register(jailkeeperPlugin, { keeper });
  fastify.get('/', async () => 'ok');
  const fromBanned = await fastify.inject({ url: '/', remoteAddress: '127.0.0.1' });
  const fromOther = await fastify.inject({ url: '/', remoteAddress: '198.51.100.7' });
  await fastify.close();

  const admin = createAdminApi(keeper, { token: 'a-consumer-test-token-0123456789', metrics: createMetrics(keeper) });
  await keeper.close();
  const clock: ManualClock | undefined = undefined;
  const refusals: Refusals = undefined;
  console.log(JSON.stringify({
    statuses,
    client: ban.client,
    body,
    fastify: [fromBanned.statusCode, fromOther.statusCode],
    values: [typeof admin.node, typeof createRedisStore, typeof checkConfig, defaultPlugin === jailkeeperPlugin],
    unused: [misspelt, prefix, clock, refusals].length,
  }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
`;

describe('TypeScript consumers compile against the packed packages, and run', () => {
  const typescript = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const consumers = [
    { name: 'ES module, module nodenext', type: 'module', module: 'nodenext' },
    { name: 'CommonJS, module node16', type: 'commonjs', module: 'node16' },
  ] as const;
  for (const consumer of consumers) {
    it(consumer.name, () => {
      const app = join(work, `ts-${consumer.type}`);
      mkdirSync(app, { recursive: true });
      for (const pkg of packages) install(pkg, app);
      // The frameworks, Redis client and type packages a user installs beside them.
      for (const name of ['express', 'fastify', 'ioredis', '@types/express'])
        link(name, join(root, 'test'), app);
      link('@types/node', root, app);
      link('prom-client', join(root, 'packages', 'ops'), app);
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: consumer.type }),
      );
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: consumer.module,
            target: 'es2022',
            strict: true,
            skipLibCheck: false,
            outDir: 'out',
            types: ['node'],
          },
          files: ['app.ts'],
        }),
      );
      writeFileSync(join(app, 'app.ts'), CONSUMER);
      let compiled = '';
      try {
        compiled = execFileSync(process.execPath, [typescript, '-p', app], {
          cwd: app,
          encoding: 'utf8',
          timeout: 180_000,
        });
      } catch (error) {
        assert.fail(`tsc failed:\n${(error as { stdout?: string }).stdout ?? String(error)}`);
      }
      assert.equal(compiled, '');
      const emitted = readFileSync(join(app, 'out', 'app.js'), 'utf8');
      if (consumer.type === 'commonjs') assert.match(emitted, /require\("@jailkeeper\/core"\)/);
      else assert.match(emitted, /^import .* from '@jailkeeper\/core';$/m);
      const output = execFileSync(process.execPath, ['--no-warnings', join(app, 'out', 'app.js')], {
        cwd: app,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.deepEqual(JSON.parse(output), {
        statuses: [401, 401, 403],
        client: '127.0.0.1',
        body: { refused: 'banned' },
        fastify: [403, 200],
        values: ['function', 'function', 'function', true],
        unused: 4,
      });
    });
  }
});

// The issue's "done when": the README examples run in an app that installed the tarballs.
describe('the README examples run against the packed packages', () => {
  const blocks = documents()
    .filter((file) => file.endsWith('README.md'))
    .flatMap(blocksOf)
    .filter((block) => !block.fragment);
  const needsRedis = (block: Block) => /REDIS_URL/.test(block.code);
  const app = join(work, 'readme-app');
  const setUp = () => {
    if (existsSync(app)) return;
    mkdirSync(app, { recursive: true });
    for (const pkg of packages) install(pkg, app);
    for (const name of ['express', 'fastify', 'ioredis']) link(name, join(root, 'test'), app);
    link('prom-client', join(root, 'packages', 'ops'), app);
    writeTsconfig(app);
  };
  const runAll = async (list: Block[], env: NodeJS.ProcessEnv) => {
    for (const [index, block] of list.entries()) {
      const run = await runBlock(block, app, { JAILKEEPER_TOKEN: TOKEN, ...env }, index);
      assert.ok(run.ok, `${where(block)} failed:\n${run.output}`);
      for (const server of run.servers) assert.equal(typeof server.status, 'number', where(block));
    }
  };
  const plain = blocks.filter((b) => !needsRedis(b));
  const withRedis = blocks.filter(needsRedis);
  it(`${plain.length} examples`, async () => {
    setUp();
    await runAll(plain, {});
  });
  it(`${withRedis.length} examples with Redis`, { skip: NO_REDIS }, async () => {
    setUp();
    const redis = await startRedis();
    try {
      await runAll(withRedis, { REDIS_URL: redis.url });
    } finally {
      await redis.stop();
    }
  });
});

/** Every entry point a package's exports map names, as a specifier: `@jailkeeper/core/adapter`. */
function specifiers(pkg: { manifest: Manifest }): string[] {
  return Object.keys(pkg.manifest.exports ?? {})
    .filter((key) => key !== './package.json')
    .map((key) => (key === '.' ? pkg.manifest.name : `${pkg.manifest.name}/${key.slice(2)}`));
}

/** The frameworks the ops subpaths mount on (their optional peers), as an app brings them. */
function linkFrameworks(app: string): void {
  for (const name of [
    'express',
    'fastify',
    'hono',
    'rxjs',
    'reflect-metadata',
    '@nestjs/common',
    '@nestjs/core',
  ])
    link(name, join(root, 'test'), app);
}

// CommonJS without Node's require(esm): what Jest, ts-node, older tooling and Node before 20.19 do.
// Each entry point must load as real CommonJS (cjs/), not through an ES module.
describe('every entry point of every package requires as CommonJS, with require(esm) off', () => {
  it(`${packages.length} packages`, () => {
    const app = join(work, 'cjs-only');
    mkdirSync(app, { recursive: true });
    for (const pkg of packages) install(pkg, app);
    linkFrameworks(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'cjs-only', private: true }));
    const entries = packages.flatMap(specifiers);
    assert.ok(entries.length >= packages.length + 7, `${entries.length} entry points`);
    const script = `const out = {};
for (const spec of ${JSON.stringify(entries)}) {
  const m = require(spec);
  out[spec] = { file: require.resolve(spec), names: Object.keys(m).sort() };
}
console.log(JSON.stringify(out));`;
    const output = execFileSync(process.execPath, ['--no-experimental-require-module', '-e', script], {
      cwd: app,
      encoding: 'utf8',
    });
    const loaded = JSON.parse(output) as Record<string, { file: string; names: string[] }>;
    // The same names as the ES module build of each entry point (a types-only entry has none).
    const esm = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const out = {};
for (const spec of ${JSON.stringify(entries)}) out[spec] = Object.keys(await import(spec)).sort();
console.log(JSON.stringify(out));`,
        ],
        { cwd: app, encoding: 'utf8' },
      ),
    ) as Record<string, string[]>;
    for (const spec of entries) {
      assert.match(loaded[spec]?.file ?? '', /\/cjs\//, `${spec} resolves to the CommonJS build`);
      assert.deepEqual(loaded[spec]?.names, esm[spec], `${spec}: the names of its ES module build`);
    }
    assert.ok(esm['@jailkeeper/core']?.includes('createJailkeeper'), 'the entry points export their APIs');
  });
});

/**
 * The packages an install of `roots` brings (dependencies, transitively; peers are the app's), read
 * from the workspace's own installs: `name@version` → [name, directory].
 */
function closure(roots: readonly { name: string; dir: string }[]): Map<string, [string, string]> {
  const found = new Map<string, [string, string]>();
  const visit = (name: string, dir: string) => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest & {
      version: string;
    };
    const key = `${name}@${manifest.version}`;
    if (found.has(key)) return;
    found.set(key, [name, dir]);
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      const sibling = packages.find((p) => p.manifest.name === dep);
      if (sibling) visit(dep, sibling.dir);
      else visit(dep, installed(dep, dir));
    }
  };
  for (const { name, dir } of roots) visit(name, dir);
  return found;
}

/** Where Node finds `dep` from a package in `dir`: the nearest node_modules up the tree holding it. */
function installed(dep: string, dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', dep);
    if (existsSync(candidate)) return realpathSync(candidate);
    assert.notEqual(dirname(at), at, `${dep} is installed for ${dir}`);
  }
}

/** Bytes on disk of a package as installed: its files, not the packages it depends on. */
function packageBytes(name: string, dir: string): number {
  const ours = packages.find((p) => p.manifest.name === name);
  if (ours) {
    // Ours as published: the tarball's files.
    const listing = execFileSync('tar', ['-tvzf', pack(ours)], { encoding: 'utf8' });
    return listing
      .split('\n')
      .filter((l) => l.startsWith('-'))
      .reduce((sum, l) => sum + Number(l.split(/\s+/)[2]), 0);
  }
  const du = execFileSync('du', ['-sb', '--exclude=node_modules', dir], { encoding: 'utf8' });
  return Number(du.split('\t')[0]);
}

// Issue 28: core + one adapter over a bare app of its framework adds at most 3 packages and 1 MB
// (express-rate-limit adds 2 and 0.6 MB); the operators' tools and the console are not among them.
describe('installing core and an adapter is light', () => {
  const frameworks = { express: 'express', fastify: 'fastify', hono: 'hono' } as const;
  for (const [adapter, framework] of Object.entries(frameworks)) {
    it(`@jailkeeper/${adapter} over a bare ${framework} app`, (t) => {
      const fw = closure([
        { name: framework, dir: realpathSync(join(root, 'test', 'node_modules', framework)) },
      ]);
      const ours = closure(
        ['core', adapter].map((name) => ({ name: `@jailkeeper/${name}`, dir: join(root, 'packages', name) })),
      );
      // A package the framework already installed at the same version is not added.
      const added = [...ours]
        .filter(([key]) => !fw.has(key))
        .map(([key, [name, dir]]) => ({ key, name, dir }));
      const bytes = added.reduce((sum, { name, dir }) => sum + packageBytes(name, dir), 0);
      t.diagnostic(`adds ${added.map((a) => a.key).join(', ')}: ${(bytes / 1e6).toFixed(2)} MB`);
      assert.ok(!added.some((a) => ['@jailkeeper/ops', 'lit-html', 'uplot'].includes(a.name)), 'no console');
      assert.ok(added.length <= 3, `adds ${added.length} packages`);
      assert.ok(bytes <= 1_000_000, `adds ${bytes} bytes`);
    });
  }
  // The NestJS module mounts the Express or the Fastify adapter under Nest: each is an optional peer,
  // and an app on Express installs @jailkeeper/express beside it (the Fastify one is not added).
  it('@jailkeeper/nestjs and @jailkeeper/express over a bare NestJS app (Express platform)', (t) => {
    const nest = ['@nestjs/core', '@nestjs/common', '@nestjs/platform-express'];
    const fw = closure(
      nest.map((name) => ({ name, dir: realpathSync(join(root, 'test', 'node_modules', name)) })),
    );
    const ours = closure(
      ['core', 'nestjs', 'express'].map((name) => ({
        name: `@jailkeeper/${name}`,
        dir: join(root, 'packages', name),
      })),
    );
    const added = [...ours].filter(([key]) => !fw.has(key)).map(([key, [name, dir]]) => ({ key, name, dir }));
    const bytes = added.reduce((sum, { name, dir }) => sum + packageBytes(name, dir), 0);
    t.diagnostic(`adds ${added.map((a) => a.key).join(', ')}: ${(bytes / 1e6).toFixed(2)} MB`);
    assert.ok(!added.some((a) => ['@jailkeeper/ops', 'lit-html', 'uplot'].includes(a.name)), 'no console');
    assert.ok(!added.some((a) => a.name === '@jailkeeper/fastify'), 'not the Fastify adapter');
    assert.ok(added.length <= 3, `adds ${added.length} packages`);
    assert.ok(bytes <= 1_000_000, `adds ${bytes} bytes`);
  });
});

// Without its platform's adapter, a Nest app is refused at init() with a coded error naming the
// package to install; with it, the same app starts.
describe('@jailkeeper/nestjs without its platform adapter', () => {
  it('a Nest app on Express without @jailkeeper/express fails at init, naming the package', () => {
    const app = join(work, 'nest-no-adapter');
    mkdirSync(app, { recursive: true });
    for (const pkg of packages.filter((p) => /\/(core|nestjs)$/.test(p.manifest.name))) install(pkg, app);
    for (const name of ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express'])
      link(name, join(root, 'packages', 'nestjs'), app);
    for (const name of ['rxjs', 'reflect-metadata']) link(name, join(root, 'test'), app);
    const script = `require('reflect-metadata');
const { NestFactory } = require('@nestjs/core');
const { Module } = require('@nestjs/common');
const { JailkeeperModule } = require('@jailkeeper/nestjs');
class AppModule {}
Module({ imports: [JailkeeperModule.forRoot({ keeper: { jails: { login: { statuses: [401] } } } })] })(AppModule);
NestFactory.create(AppModule, { logger: false, abortOnError: false })
  .then((nest) => nest.init().then(() => nest.close()))
  .then(
    () => console.log(JSON.stringify({ started: true })),
    (e) => console.log(JSON.stringify({ code: e.code, message: e.message })),
  );`;
    const run = () =>
      JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' }));
    assert.ok(!existsSync(join(app, 'node_modules', '@jailkeeper', 'express')));
    const refused = run() as { code?: string; message?: string };
    assert.equal(refused.code, 'JK_ERR_MISSING_PACKAGE', JSON.stringify(refused));
    assert.match(refused.message ?? '', /npm install @jailkeeper\/express/);
    const adapter = packages.find((p) => p.manifest.name === '@jailkeeper/express');
    assert.ok(adapter);
    install(adapter, app);
    assert.deepEqual(run(), { started: true });
  });
});

// What `nest new` gives: a CommonJS TypeScript project tested by Jest through ts-jest. Its spec used
// to fail at `import { JailkeeperModule } from '@jailkeeper/nestjs'` (SyntaxError: Unexpected token
// 'export'). Jest and ts-jest are the tests' own devDependencies, run from the workspace.
const NEST_SPEC = `import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, HttpCode, Post, UnauthorizedException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createJailkeeper } from '@jailkeeper/core';
import { JailkeeperModule, JailkeeperService } from '@jailkeeper/nestjs';

@Controller()
class LoginController {
  @Post('login')
  @HttpCode(200)
  login(): never {
    throw new UnauthorizedException();
  }
}

function post(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('LoginController', () => {
  it('is banned after two wrong passwords', async () => {
    const keeper = createJailkeeper({
      jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 2, banTime: '1h' } },
    });
    const moduleRef = await Test.createTestingModule({
      imports: [JailkeeperModule.forRoot({ keeper })],
      controllers: [LoginController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const url = \`http://127.0.0.1:\${(app.getHttpServer().address() as AddressInfo).port}/login\`;
    try {
      const statuses = [await post(url), await post(url)];
      await keeper.idle();
      statuses.push(await post(url));
      expect(statuses).toEqual([401, 401, 403]);
      expect(moduleRef.get(JailkeeperService)).toBeDefined();
      expect(require.resolve('@jailkeeper/nestjs')).toMatch(/\\/cjs\\//);
    } finally {
      await app.close();
      await keeper.close();
    }
  });
});
`;

describe('a NestJS project as `nest new` makes it (CommonJS, Jest, ts-jest) runs its spec', () => {
  it('JailkeeperModule in a Jest spec', (t) => {
    // Jest, ts-jest and Jest's types are devDependencies of the tests (installed with the rest).
    const tools = join(root, 'test');
    const app = join(work, 'nest-jest');
    mkdirSync(join(app, 'src'), { recursive: true });
    for (const pkg of packages.filter((p) => /\/(core|nestjs|express)$/.test(p.manifest.name)))
      install(pkg, app);
    for (const name of ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', '@nestjs/testing'])
      link(name, join(root, 'packages', 'nestjs'), app);
    for (const name of ['rxjs', 'reflect-metadata']) link(name, join(root, 'test'), app);
    link('@types/node', root, app);
    link('@types/jest', tools, app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'nest-app', private: true }));
    // nest new's tsconfig.json and its package.json's "jest" section (rootDir src, ts-jest for .ts).
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'commonjs',
          declaration: true,
          removeComments: true,
          emitDecoratorMetadata: true,
          experimentalDecorators: true,
          allowSyntheticDefaultImports: true,
          target: 'ES2023',
          sourceMap: true,
          outDir: './dist',
          baseUrl: './',
          incremental: true,
          skipLibCheck: true,
          strictNullChecks: true,
          types: ['node', 'jest'],
        },
      }),
    );
    writeFileSync(
      join(app, 'jest.config.js'),
      `module.exports = ${JSON.stringify({
        moduleFileExtensions: ['js', 'json', 'ts'],
        rootDir: 'src',
        testRegex: '.*\\.spec\\.ts$',
        transform: { '^.+\\.(t|j)s$': join(tools, 'node_modules', 'ts-jest') },
        testEnvironment: 'node',
      })};\n`,
    );
    writeFileSync(join(app, 'src', 'app.controller.spec.ts'), NEST_SPEC);
    const jest = join(tools, 'node_modules', 'jest', 'bin', 'jest.js');
    const run = spawnSync(process.execPath, [jest, '--ci', '--colors=false'], {
      cwd: app,
      encoding: 'utf8',
      timeout: 180_000,
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, `jest failed:\n${output}`);
    assert.match(output, /Tests:\s+1 passed, 1 total/);
    t.diagnostic(output.trim().split('\n').slice(-5).join(' | '));
  });
});

// The console's front end is an optional peer of ops: an app without it that turns the console on
// is refused at startup, naming the option and the package to install.
describe('ops without @jailkeeper/console', () => {
  it('console: true is refused at startup, naming the package', () => {
    const app = join(work, 'ops-no-console');
    mkdirSync(app, { recursive: true });
    for (const pkg of packages.filter((p) => /\/(core|ops)$/.test(p.manifest.name))) install(pkg, app);
    assert.ok(!existsSync(join(app, 'node_modules', '@jailkeeper', 'console')));
    const script = `const { createJailkeeper } = require('@jailkeeper/core');
const { createAdminApi } = require('@jailkeeper/ops');
const keeper = createJailkeeper({ jails: { login: { statuses: [401] } } });
const token = 'a-token-of-at-least-sixteen-characters';
createAdminApi(keeper, { token }); // without the console: fine
try {
  createAdminApi(keeper, { token, console: true });
  console.log(JSON.stringify({ threw: false }));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, option: error.option, message: error.message }));
}
keeper.close();`;
    const output = execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' });
    const refused = JSON.parse(output) as { code?: string; option?: string; message?: string };
    assert.equal(refused.code, 'JK_ERR_INVALID_OPTION');
    assert.match(refused.option ?? '', /(^|\.)console$/);
    assert.match(refused.message ?? '', /npm install @jailkeeper\/console/);
  });
});
