#!/usr/bin/env node
// Runs test files with node:test, several files at a time: most of the suite waits on sockets,
// timers and child processes, so on a 2-core machine three files at once take about half the time
// of one at a time. A file that measures the process itself (the event loop's longest block, a
// store deadline missed under load) says so on a line of its own,
//
//   // test-run: alone (why)
//
// and runs after the others, one file at a time, with the machine to itself.
//
// Usage: node --import tsx test/run.mjs [--concurrency N] <file or directory>...
//        (JK_TEST_CONCURRENCY=N too; each file runs in a process of its own, with tsx, and fails
//        after 25 minutes, JK_TEST_FILE_TIMEOUT_MS)
//
// It uses node:test's run() rather than `node --test --test-concurrency=N`: Node 20 hands that
// flag on to each file's process, where it runs the file's own top-level suites concurrently
// too, and suites that share a Redis or a keeper then wait on each other for ever.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const args = process.argv.slice(2);
let concurrency = Number(process.env.JK_TEST_CONCURRENCY ?? 3);
const at = args.indexOf('--concurrency');
if (at !== -1) concurrency = Number(args.splice(at, 2)[1]);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('test/run.mjs: --concurrency (or JK_TEST_CONCURRENCY) is a whole number of files, 1 or more');
  process.exit(2);
}

/** The test files under the arguments: files as given, directories' own *.test.ts (not nested). */
const files = args.flatMap((arg) =>
  statSync(arg).isDirectory()
    ? readdirSync(arg)
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => join(arg, f))
    : [arg],
);
if (files.length === 0) {
  console.error('test/run.mjs: no test files');
  process.exit(2);
}
const FILE_TIMEOUT_MS = Number(process.env.JK_TEST_FILE_TIMEOUT_MS ?? 25 * 60_000);
const ALONE = /^\/\/ test-run: alone\b/m;
const alone = files.filter((f) => ALONE.test(readFileSync(f, 'utf8')));
const shared = files.filter((f) => !alone.includes(f));

/** Runs the files, `n` at a time; resolves to the number of failed tests (todo ones not counted). */
function runFiles(files, n) {
  if (files.length === 0) return Promise.resolve(0);
  return new Promise((resolve) => {
    let failed = 0;
    // A file that has not ended after FILE_TIMEOUT_MS fails (a handle left open would otherwise
    // hold the run, and CI, for ever).
    const stream = run({ files, concurrency: n, timeout: FILE_TIMEOUT_MS });
    stream.on('test:fail', (event) => {
      if (event.todo === undefined || event.todo === false) failed++;
    });
    stream.compose(spec).pipe(process.stdout, { end: false });
    stream.on('end', () => resolve(failed));
  });
}

const first = await runFiles(shared, concurrency);
if (alone.length > 0) console.log(`\n# ${alone.length} file(s) that measure the process, one at a time:`);
const second = await runFiles(alone, 1);
process.exitCode = first + second > 0 ? 1 : 0;
