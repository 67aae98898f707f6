import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NO_REDIS } from './needs.js';
import { appFolder, type Block, blocksOf, documents, root, runBlock, TOKEN, where } from './readme-blocks.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Every JavaScript block of the READMEs and docs runs as written, in a folder of its own whose
// node_modules holds the workspace packages (the packed tarballs get the same in pack-smoke).
// Servers listen on a free loopback port and must answer a request; a block that needs Redis gets
// the tests' own. A block that is a fragment of the text around it is marked <!-- fragment -->.
const blocks = documents().flatMap(blocksOf);
const runnable = blocks.filter((b) => !b.fragment);
const fragments = blocks.filter((b) => b.fragment);

const dir = mkdtempSync(join(tmpdir(), 'jk-readme-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ws = (name: string) => join(root, 'packages', name);
appFolder(dir, {
  '@jailkeeper/core': ws('core'),
  '@jailkeeper/express': ws('express'),
  '@jailkeeper/fastify': ws('fastify'),
  '@jailkeeper/redis': ws('redis'),
  '@jailkeeper/ops': ws('ops'),
  '@jailkeeper/cli': ws('cli'),
  '@jailkeeper/hono': ws('hono'),
  '@jailkeeper/nestjs': ws('nestjs'),
  express: join(root, 'test', 'node_modules', 'express'),
  fastify: join(root, 'test', 'node_modules', 'fastify'),
  ioredis: join(root, 'test', 'node_modules', 'ioredis'),
  hono: join(root, 'test', 'node_modules', 'hono'),
  '@hono/node-server': join(root, 'test', 'node_modules', '@hono', 'node-server'),
  '@nestjs/common': join(root, 'test', 'node_modules', '@nestjs', 'common'),
  '@nestjs/core': join(root, 'test', 'node_modules', '@nestjs', 'core'),
  '@nestjs/platform-express': join(root, 'test', 'node_modules', '@nestjs', 'platform-express'),
  'reflect-metadata': join(root, 'test', 'node_modules', 'reflect-metadata'),
  rxjs: join(root, 'test', 'node_modules', 'rxjs'),
  'prom-client': join(ws('ops'), 'node_modules', 'prom-client'),
  '@types/node': join(root, 'node_modules', '@types', 'node'),
  '@types/express': join(root, 'test', 'node_modules', '@types', 'express'),
});

const needsRedis = (block: Block) => /REDIS_URL/.test(block.code);

describe('every code block of the READMEs and docs runs as written', () => {
  let redis: TestRedis | undefined;
  before(async () => {
    if (runnable.some(needsRedis) && !NO_REDIS) redis = await startRedis();
  });
  after(() => redis?.stop());

  runnable.forEach((block, index) => {
    it(where(block), { skip: (needsRedis(block) && NO_REDIS) || false }, async (t) => {
      const run = await runBlock(block, dir, { JAILKEEPER_TOKEN: TOKEN, REDIS_URL: redis?.url }, index);
      assert.ok(run.ok, `${where(block)} failed:\n${run.output}`);
      // A block that starts a server must have one that answers (any status but a server error).
      if (/\.listen\(/.test(block.code)) assert.ok(run.servers.length > 0, 'its server listened');
      for (const server of run.servers) {
        assert.ok(
          typeof server.status === 'number' && server.status < 500,
          `a server of ${where(block)} answered ${server.status}`,
        );
      }
      t.diagnostic(`GET / answered ${run.servers.map((s) => s.status).join(', ') || '(no server)'}`);
    });
  });

  it('runs the shortest example of every package that has one, and lists the fragments it skipped', (t) => {
    for (const name of ['core', 'express', 'fastify', 'redis', 'ops', 'nestjs', 'hono']) {
      const file = join('packages', name, 'README.md');
      assert.ok(
        runnable.some((b) => b.file === file),
        `${file} has a runnable example`,
      );
    }
    assert.ok(
      runnable.some((b) => b.file === 'README.md'),
      'the root README has a runnable example',
    );
    t.diagnostic(`${runnable.length} blocks run; ${fragments.length} fragments skipped:`);
    for (const block of fragments) t.diagnostic(`  ${where(block)}`);
  });

  it('every example whose keeper has a store that loads awaits keeper.ready', () => {
    const loading = blocks.filter(
      (b) => /createJailkeeper\(/.test(b.code) && /createRedisStore\(|\bpersist:/.test(b.code),
    );
    assert.ok(loading.length > 0, 'some example uses a store that loads');
    for (const block of loading) assert.match(block.code, /await keeper\.ready/, where(block));
  });
});

// A TypeScript user pastes the examples into a strict project: every block that runs (JavaScript
// ones checked as JavaScript, with checkJs) must also compile under `strict`, as the type
// declarations of the packages describe them. A token from process.env is `string | undefined`, a
// request body is unknown until the route says what it is, a handler's parameters have types.
describe('every code block of the READMEs and docs compiles under strict', () => {
  it(`${runnable.length} blocks`, async () => {
    const types = join(dir, 'strict');
    mkdirSync(types, { recursive: true });
    const files = runnable.map((block, index) => {
      const commonJs = block.lang === 'js' && /\brequire\(/.test(block.code) && !/^import /m.test(block.code);
      const file = `block-${index}.${block.lang === 'ts' ? 'mts' : commonJs ? 'cjs' : 'mjs'}`;
      writeFileSync(join(types, file), block.code);
      return { file, block };
    });
    writeFileSync(
      join(types, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2022',
          strict: true,
          allowJs: true,
          checkJs: true,
          noEmit: true,
          skipLibCheck: true,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          types: ['node'],
        },
        files: files.map((f) => f.file),
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const output = await new Promise<string>((resolve) => {
      execFile(process.execPath, [tsc, '-p', types], { cwd: types, timeout: 180_000 }, (_error, stdout) =>
        resolve(stdout),
      );
    });
    // Each error names the README line it came from.
    const errors = output
      .split('\n')
      .filter((line) => /error TS\d+/.test(line))
      .map((line) => {
        const at = /^block-(\d+)\.\w+\((\d+),\d+\): (.*)$/.exec(line);
        const block = at ? files[Number(at[1])]?.block : undefined;
        return block && at ? `${block.file}:${block.line + Number(at[2])}: ${at[3]}` : line;
      });
    assert.deepEqual(errors, []);
  });
});
