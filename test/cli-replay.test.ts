/**
 * `jailkeeper replay` on a generated access log of 1,000,000 lines, as an operator runs it: a real
 * process, a JSON config file, the JSON report parsed back and checked against the known answers.
 * The throughput is printed, not asserted (bench/replay.bench.ts measures it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Expected, REPLAY_CONFIG, writeAccessLog } from './access-log.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
let dir: string;
let log: string;
let config: string;
let expected: Expected;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jk-replay-'));
  log = join(dir, 'access.log');
  config = join(dir, 'jailkeeper.json');
  await writeFile(config, JSON.stringify(REPLAY_CONFIG));
  expected = await writeAccessLog(log, 1_000_000);
});
after(() => rm(dir, { recursive: true, force: true }));

function replay(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, 'replay', ...args],
      { maxBuffer: 64 << 20, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('jailkeeper replay', () => {
  it('replays 1,000,000 lines: every attacker banned at its 5th failure, /ws exempt, the admin ignored, nobody else banned', async () => {
    const res = await replay([log, '--config', config, '--json', '--no-progress']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout);
    assert.equal(report.lines, 1_000_000);
    assert.equal(report.parsed, 1_000_000);
    assert.equal(report.unparseable, 0);
    const bans = report.bans as Array<{ jail: string; ip: string; line: number }>;
    assert.equal(bans.length, expected.banLines.size, 'one ban per attacker, and no other');
    for (const ban of bans) {
      assert.equal(ban.jail, 'login');
      assert.equal(ban.line, expected.banLines.get(ban.ip), `${ban.ip} is banned on its 5th failure`);
    }
    assert.equal(report.refused, expected.refused);
    assert.equal(report.jails.forbidden.exempt, expected.wsLines);
    assert.deepEqual(report.jails.forbidden.exemptPaths, { '/ws': expected.wsLines });
    assert.equal(report.jails.forbidden.bans, 0, 'browsers opening /ws ban nobody');
    assert.equal(report.jails.login.ignored, expected.adminFailures);
    console.log(`# replay: ${report.lines} lines in ${report.seconds} s = ${report.linesPerSecond} lines/s`);
  });

  it('prints a human report with the exempt paths and the bans', async () => {
    const small = join(dir, 'small.log');
    await writeAccessLog(small, 20_000);
    const res = await replay([small, '--config', config, '--no-progress']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /^Replayed 20000 lines \(combined, 2026-11-20T06:00:\d\dZ to 2026-11-20T12:00:00Z\)/m,
    );
    assert.match(res.stdout, /^login\s+\d+\s+0\s+\d+\s+0\s+4$/m);
    assert.match(res.stdout, /^Exempt in forbidden \(these responses would not count\):\n\s+396\s+\/ws$/m);
    assert.match(res.stdout, /^\S+Z\s+203\.0\.113\.1\s+login\s+1h\s+1\s+1028$/m);
  });

  it('reports unparseable lines and a config with problems', async () => {
    const bad = join(dir, 'bad.log');
    await writeFile(
      bad,
      'not a log line\n203.0.113.9 - - [20/Nov/2026:06:00:00 +0000] "POST /login HTTP/1.1" 401 1\n',
    );
    const res = await replay([bad, '--config', config, '--json', '--no-progress']);
    const report = JSON.parse(res.stdout);
    assert.equal(report.unparseable, 1);
    assert.deepEqual(report.unparseableSamples, [{ line: 1, text: 'not a log line' }]);
    const badConfig = join(dir, 'bad.json');
    await writeFile(badConfig, JSON.stringify({ jails: { login: { maxRetry: 0, statuses: [401] } } }));
    const refused = await replay([bad, '--config', badConfig]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /JK_ERR_INVALID_OPTION jails\.login\.maxRetry/);
    const missing = await replay([join(dir, 'none.log'), '--config', config]);
    assert.equal(missing.code, 2);
  });
});
