/**
 * docs/detection.md's replay outputs are the current build's: the log is generated again, replayed
 * by the command, and each block compared (a full block line for line, the timing of its first
 * line aside; an excerpt line by line as a part of the output, in order).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { accessLog, NAIVE_CONFIG, presetConfigModule } from './traffic/site-traffic.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/detection.md', import.meta.url));
const TIMING = /in [\d.]+ s: \d+ lines\/s\./;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jk-detection-'));
  await writeFile(join(dir, 'access.log'), accessLog());
  const core = pathToFileURL(fileURLToPath(new URL('../packages/core/dist/index.js', import.meta.url))).href;
  await writeFile(join(dir, 'presets.mjs'), presetConfigModule(core));
  await writeFile(join(dir, 'naive.json'), JSON.stringify(NAIVE_CONFIG));
});
after(() => rm(dir, { recursive: true, force: true }));

function replay(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [BIN, 'replay', join(dir, 'access.log'), '--no-progress', ...args],
      { maxBuffer: 16 << 20 },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  );
}

/** The text block after `<!-- replay:NAME -->`. */
async function block(name: string): Promise<string[]> {
  const doc = await readFile(DOC, 'utf8');
  const at = doc.indexOf(`<!-- replay:${name} -->`);
  assert.ok(at >= 0, `docs/detection.md has the block ${name}`);
  const open = doc.indexOf('```text\n', at) + '```text\n'.length;
  return doc.slice(open, doc.indexOf('\n```', open)).split('\n');
}

/** Every line of `excerpt` is a line of `output`, in the same order. */
function assertExcerpt(excerpt: string[], output: string[]): void {
  let from = 0;
  for (const line of excerpt) {
    if (line === '') continue;
    const found = output.indexOf(line, from);
    assert.ok(found >= 0, `not in the output (in order): ${line}`);
    from = found + 1;
  }
}

describe('docs/detection.md', () => {
  it('the presets replay is the current output', async () => {
    const output = (await replay('--config', join(dir, 'presets.mjs'))).trimEnd().split('\n');
    const doc = await block('presets');
    assert.deepEqual(
      doc.map((l) => l.replace(TIMING, '')),
      output.map((l) => l.replace(TIMING, '')),
    );
  });

  it('the excerpts are parts of the current output', async () => {
    assertExcerpt(
      await block('naive (excerpt)'),
      (await replay('--config', join(dir, 'naive.json'))).split('\n'),
    );
    const talk = (await replay('--config', join(dir, 'presets.mjs'), '--explain', '93.184.77.21')).split(
      '\n',
    );
    assertExcerpt(await block('explain-talk (excerpt)'), talk);
    const typist = (await replay('--config', join(dir, 'presets.mjs'), '--explain', '151.101.33.7')).split(
      '\n',
    );
    const story = typist.slice(typist.indexOf('The story of 151.101.33.7:'));
    assert.deepEqual(
      await block('explain-typist'),
      story.filter((l, i) => l !== '' || i < story.length - 1),
    );
  });
});
