/**
 * The JavaScript and TypeScript code blocks of the READMEs and docs, and a way to run one as
 * written (test/fixtures/readme-runner.mjs). A block that is deliberately a fragment (it names an
 * `app` or `jails` of the text around it) is marked by `<!-- fragment -->` on the line before its
 * fence, and is not run.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNNER = join(root, 'test', 'fixtures', 'readme-runner.mjs');

export interface Block {
  /** The file, relative to the repository. */
  readonly file: string;
  /** The line of the opening fence (1-based). */
  readonly line: number;
  readonly lang: 'js' | 'ts';
  readonly code: string;
  readonly fragment: boolean;
}

const FENCE = /^```(js|javascript|mjs|cjs|ts|typescript)\s*$/;
const FRAGMENT = /^<!--\s*fragment\b[^>]*-->\s*$/;

/** The markdown files whose examples are meant to run: the READMEs and docs/. */
export function documents(): string[] {
  const packages = readdirSync(join(root, 'packages')).map((p) => join('packages', p, 'README.md'));
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return ['README.md', ...packages, ...docs];
}

/** The code blocks of one markdown file. */
export function blocksOf(file: string): Block[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = FENCE.exec(lines[i] as string);
    if (fence === null) {
      // Skip other fenced blocks whole, so a fence inside them is not read as a start.
      if ((lines[i] as string).startsWith('```')) while (++i < lines.length && lines[i] !== '```');
      continue;
    }
    const start = i;
    const code: string[] = [];
    while (++i < lines.length && lines[i] !== '```') code.push(lines[i] as string);
    let before = start - 1;
    while (before >= 0 && (lines[before] as string).trim() === '') before--;
    blocks.push({
      file,
      line: start + 1,
      lang: (fence[1] as string).startsWith('t') ? 'ts' : 'js',
      code: `${code.join('\n')}\n`,
      fragment: before >= 0 && FRAGMENT.test(lines[before] as string),
    });
  }
  return blocks;
}

/** Where a block came from, for messages: `packages/express/README.md:14`. */
export const where = (block: Block) => `${block.file}:${block.line}`;

/**
 * A folder to run blocks in: `node_modules` links the given packages (name → folder), so that a
 * block's imports resolve as in an app that installed them.
 */
export function appFolder(dir: string, links: Readonly<Record<string, string>>): string {
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  for (const [name, target] of Object.entries(links)) {
    const link = join(dir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(realpathSync(target), link);
  }
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'readme-app', private: true, type: 'module' }),
  );
  writeTsconfig(dir);
  return dir;
}

/** TypeScript blocks compile as a NestJS app's would: with the legacy decorators Nest is built on. */
export function writeTsconfig(dir: string): void {
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { experimentalDecorators: true, emitDecoratorMetadata: true } }),
  );
}

/** The admin token the examples read from JAILKEEPER_TOKEN. */
export const TOKEN = 'readme-example-token-0123456789abcdef';

export interface BlockRun {
  readonly ok: boolean;
  /** The statuses the block's servers answered a GET / with. */
  readonly servers: readonly { status: number | string }[];
  readonly output: string;
}

/** Runs one block as written, in `dir`, and reports what happened. */
export function runBlock(
  block: Block,
  dir: string,
  env: NodeJS.ProcessEnv,
  index: number,
): Promise<BlockRun> {
  const name = `${relative(root, join(root, block.file)).replace(/[^a-z0-9]+/gi, '-')}-${block.line}`;
  const commonJs = block.lang === 'js' && /\brequire\(/.test(block.code) && !/^import /m.test(block.code);
  const file = join(dir, `${index}-${name}.${block.lang === 'ts' ? 'mts' : commonJs ? 'cjs' : 'mjs'}`);
  writeFileSync(file, block.code);
  const args = block.lang === 'ts' ? ['--import', import.meta.resolve('tsx'), RUNNER, file] : [RUNNER, file];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--no-warnings', ...args],
      { cwd: dir, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        const result = /^README-RESULT (.*)$/m.exec(stdout);
        if (error !== null || result === null) {
          resolve({ ok: false, servers: [], output: `${error?.message ?? 'no result'}\n${output}` });
          return;
        }
        const parsed = JSON.parse(result[1] as string) as { servers: { status: number | string }[] };
        resolve({ ok: true, servers: parsed.servers, output });
      },
    );
  });
}
