/**
 * Issue 14, the memory store's snapshot: malformed entries skipped one by one (with a warning that
 * reaches `keeper.on('warning')`, although it is raised while constructing), stale temporary
 * files removed at start, an unreadable file reported as such and left alone, and a large
 * snapshot written in chunks.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createJailkeeper, type JailOptions } from '../src/index.js';
import { recordingLogger } from '../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'jk-issue14-snap-'));
const jails = { login: { statuses: [401], maxRetry: 1, banTime: '1h' } } satisfies Record<
  string,
  JailOptions
>;

function snapshot(bans: number, extra: object = {}) {
  const now = Date.now();
  return JSON.stringify({
    version: 1,
    savedAt: now,
    bans: Array.from({ length: bans }, (_, i) => ({
      jail: 'login',
      client: `30.0.0.${i + 1}`,
      startMs: now,
      endMs: now + 3_600_000,
      banCount: 1,
      reason: 'r',
      manual: false,
    })),
    history: Array.from({ length: bans }, (_, i) => ({
      client: `30.0.0.${i + 1}`,
      jails: { login: 1 },
      total: 1,
      expiresMs: now + 86_400_000,
    })),
    pardons: [],
    ...extra,
  });
}

describe('the memory store’s snapshot', () => {
  it('one malformed history entry (jails: null) costs that entry, not the twenty bans beside it', async () => {
    const file = join(dir, 'null-jails.json');
    const data = JSON.parse(snapshot(20));
    data.history[3].jails = null;
    writeFileSync(file, JSON.stringify(data));
    const keeper = createJailkeeper({ persist: file, jails, logger: recordingLogger() });
    const warnings: { code: string; message: string }[] = [];
    // Added after construction, when the warning was raised: it is replayed to this listener.
    keeper.on('warning', (w) => warnings.push(w));
    await keeper.ready;
    for (let i = 1; i <= 20; i++) assert.equal(keeper.check(`30.0.0.${i}`).banned, true, `30.0.0.${i}`);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['JK_WRN_PERSIST_CORRUPT'],
    );
    // Issue 26: not restorable whole, so the file is moved aside, and the warning says what was lost.
    assert.match(
      warnings[0]?.message ?? '',
      /lost 1 of 20 history entries\. Restored 20 bans, 19 history entries/,
    );
    assert.ok(readdirSync(dir).some((f) => f.startsWith('null-jails.json.corrupt-')));
    await keeper.close();
  });

  it('a temporary file left by a crashed writer is removed at start', async () => {
    const file = join(dir, 'crashed.json');
    writeFileSync(file, snapshot(2));
    writeFileSync(`${file}.tmp-999999`, '{"version":1,"bans":[');
    writeFileSync(join(dir, 'unrelated.json.tmp-1'), 'not ours');
    const keeper = createJailkeeper({ persist: file, jails, logger: recordingLogger() });
    assert.ok(!existsSync(`${file}.tmp-999999`), 'the stale temporary is gone');
    assert.ok(existsSync(join(dir, 'unrelated.json.tmp-1')), 'another file’s temporary is left alone');
    assert.equal(keeper.check('30.0.0.2').banned, true);
    await keeper.close();
    assert.ok(!readdirSync(dir).some((f) => f.startsWith('crashed.json.tmp-')), 'no temporary left by close');
  });

  it('an unreadable file is reported as unreadable, left in place, and never written over', async () => {
    const file = join(dir, 'unreadable.json');
    mkdirSync(file); // reading a directory fails with EISDIR, as a file without permission would
    const logger = recordingLogger();
    const keeper = createJailkeeper({ persist: file, jails, logger });
    await keeper.observe({ client: '30.1.0.1', method: 'POST', path: '/login', status: 401 });
    await keeper.close();
    const warned = logger.lines.filter((l) => l.level === 'warn');
    assert.deepEqual(
      warned.map((l) => l.code),
      ['JK_WRN_PERSIST_UNREADABLE'],
    );
    assert.match(
      warned[0]?.msg ?? '',
      /cannot be read \(EISDIR.*leaves it in place and does not write over it/,
    );
    assert.ok(statSync(file).isDirectory(), 'left in place');
    assert.ok(!readdirSync(dir).some((f) => f.startsWith('unreadable.json.corrupt')), 'not called corrupt');
  });

  it('a corrupted file is still moved aside as corrupt', async () => {
    const file = join(dir, 'torn.json');
    writeFileSync(file, '{"version":1,"bans":[{"jail":"login"');
    const logger = recordingLogger();
    const keeper = createJailkeeper({ persist: file, jails, logger });
    await keeper.close();
    assert.deepEqual(
      logger.lines.filter((l) => l.level === 'warn').map((l) => l.code),
      ['JK_WRN_PERSIST_CORRUPT'],
    );
    assert.ok(readdirSync(dir).some((f) => f.startsWith('torn.json.corrupt-')));
  });

  it('writes a large snapshot in chunks that read back whole (version 3: history of ended bans only)', async () => {
    const file = join(dir, 'large.json');
    const keeper = createJailkeeper({ persist: file, jails, logger: recordingLogger() });
    for (let i = 0; i < 5000; i++) await keeper.ban(`31.0.${i >> 8}.${i & 255}`, { duration: '1h' });
    await keeper.unban('31.0.0.0');
    await keeper.close();
    const data = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(data.version, 3, 'version 2 with one entry a line (issue 26)');
    assert.equal(data.bans.length, 4999);
    assert.equal(data.history.length, 1, 'only the lifted ban left history');
    const again = createJailkeeper({ persist: file, jails, logger: recordingLogger() });
    assert.equal(again.activeBans().length, 4999);
    const next = await again.ban('31.0.0.0', { duration: '1h' });
    assert.equal(next.banCount, 2, 'the history of the lifted ban survived');
    await again.close();
  });
});
