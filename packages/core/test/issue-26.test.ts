// test-run: alone (it measures the event loop's longest block)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { createManualClock } from '../src/clock.js';
import type { ResponseEvent } from '../src/engine/events.js';
import { internalsOf } from '../src/engine/internals.js';
import { createJailkeeper, type Jailkeeper } from '../src/engine/keeper.js';
import type { JailkeeperOptions } from '../src/engine/options.js';
import { createMemoryStore } from '../src/store/memory-store.js';

const dir = mkdtempSync(join(tmpdir(), 'jk-issue26-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fileName = () => join(dir, `bans-${files++}.json`);

const jails: JailkeeperOptions['jails'] = {
  login: { statuses: [401], paths: ['/login'], maxRetry: 3, findTime: '10m', banTime: '1h' },
};
const fail = (client: string): ResponseEvent => ({
  client,
  method: 'POST',
  route: '/login',
  path: '/login',
  status: 401,
});
const quiet = { info() {}, warn() {}, error() {} };

function keeperOn(file: string, options: Partial<JailkeeperOptions> = {}): Jailkeeper {
  return createJailkeeper({
    jails,
    store: createMemoryStore({ persist: file }),
    logger: quiet,
    ...options,
  });
}

describe('status() is bounded', () => {
  it('lists at most 100 banned clients per jail, and counts them all', async () => {
    const keeper = createJailkeeper({ jails, logger: quiet });
    for (let i = 0; i < 250; i++) await keeper.ban(`198.51.${i >> 8}.${i & 255}`, { jail: 'login' });
    const status = await keeper.status();
    const login = status.jails.login;
    assert.ok(login !== undefined);
    assert.equal(login.currentlyBanned, 250);
    assert.equal(login.bannedClients.length, 100);
    assert.equal(new Set(login.bannedClients).size, 100);
    await keeper.close();
  });
});

describe('bansPage() lets the event loop turn', () => {
  it("between two pages of a caller's tight walk over the memory store", async () => {
    const keeper = createJailkeeper({ jails, logger: quiet });
    for (let i = 0; i < 5; i++) await keeper.ban(`198.51.100.${i + 1}`);
    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const seen: number[] = [];
    let after: string | undefined;
    do {
      const page = await keeper.bansPage({ after, limit: 1 });
      seen.push(turns);
      after = page.next;
    } while (after !== undefined);
    running = false;
    assert.ok(seen.length >= 5, `${seen.length} pages`);
    for (let k = 1; k < seen.length; k++)
      assert.ok((seen[k] as number) > (seen[k - 1] as number), `no turn before page ${k}`);
    await keeper.close();
  });
});

describe('close() loses nothing in flight', () => {
  it('waits for an admitted attempt to be counted, and its ban is in the snapshot', async () => {
    const file = fileName();
    const keeper = keeperOn(file);
    const client = '203.0.113.7';
    await keeper.observe(fail(client));
    await keeper.observe(fail(client));
    // An adapter admitted the third guess; its handler is still running when close() is called.
    (internalsOf(keeper) as NonNullable<ReturnType<typeof internalsOf>>).flight.begin();
    let closed = false;
    const closing = keeper.close().then(() => {
      closed = true;
    });
    assert.equal(keeper.isClosing, true);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(closed, false, 'close() did not wait for the attempt in flight');
    await keeper.observe(fail(client));
    (internalsOf(keeper) as NonNullable<ReturnType<typeof internalsOf>>).flight.end();
    await closing;
    assert.equal(keeper.droppedOnClose, 0);
    const restarted = keeperOn(file);
    await restarted.ready;
    assert.equal(restarted.check(client).banned, true);
    await restarted.close();
  });

  it('says how many it dropped when the timeout ends first', async () => {
    const keeper = keeperOn(fileName());
    const warnings: string[] = [];
    keeper.on('warning', (w) => warnings.push(w.code));
    (internalsOf(keeper) as NonNullable<ReturnType<typeof internalsOf>>).flight.begin();
    (internalsOf(keeper) as NonNullable<ReturnType<typeof internalsOf>>).flight.begin();
    await keeper.close({ timeoutMs: 20 });
    assert.equal(keeper.droppedOnClose, 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(warnings.includes('JK_WRN_CLOSE_DROPPED'), warnings.join());
  });

  it('refuses operator calls once closing, and returns the same promise when called again', async () => {
    const keeper = keeperOn(fileName());
    const first = keeper.close();
    assert.equal(keeper.close(), first);
    await assert.rejects(keeper.ban('203.0.113.9'), { code: 'JK_ERR_CLOSED' });
    await first;
  });

  it('rejects a bad timeout without closing', async () => {
    const keeper = keeperOn(fileName());
    await assert.rejects(keeper.close({ timeoutMs: -1 }), { code: 'JK_ERR_INVALID_ARGUMENT' });
    assert.equal(keeper.isClosing, false);
    await keeper.close();
  });
});

describe('persist tells the truth', () => {
  it('a snapshot whose bans is not a list is moved aside, and the warning says every ban was lost', async () => {
    const file = fileName();
    const now = Date.now();
    const bans = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [
        String(i),
        { jail: 'login', client: `30.1.${i >> 8}.${i & 255}`, startMs: now, endMs: now + 3_600_000 },
      ]),
    );
    writeFileSync(file, JSON.stringify({ version: 2, savedAt: now, bans, history: [], pardons: [] }));
    const warnings: { code: string; message: string }[] = [];
    const keeper = keeperOn(file);
    keeper.on('warning', (w) => warnings.push(w));
    await keeper.ready;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.code, 'JK_WRN_PERSIST_CORRUPT');
    assert.match(warnings[0]?.message ?? '', /lost every ban \(its "bans" is not a list\)/);
    assert.doesNotMatch(warnings[0]?.message ?? '', /the rest restored/);
    assert.equal(existsSync(file), false, 'the file is no longer where the next write goes');
    const name = file.slice(dir.length + 1);
    assert.ok(readdirSync(dir).some((f) => f.startsWith(`${name}.corrupt-`)));
    await keeper.close();
  });

  it('failure counters survive a restart within their findTime, and not after it', async () => {
    const file = fileName();
    const clock = createManualClock(Date.now());
    const first = keeperOn(file, { clock });
    const client = '203.0.113.20';
    await first.observe(fail(client));
    clock.advance(60_000);
    await first.observe(fail(client));
    await first.close();

    // Within the window: the third failure bans, as it would have without the restart.
    const second = keeperOn(file, { clock });
    await second.ready;
    assert.equal((await second.status()).jails.login?.currentlyFailed, 1);
    await second.observe(fail(client));
    assert.equal(second.check(client).banned, true, 'the restart renewed the budget');
    await second.close();

    // After the window (10 minutes) the counts are gone: a restart is no reason to keep them.
    const other = '203.0.113.21';
    const third = keeperOn(file, { clock });
    await third.observe(fail(other));
    await third.observe(fail(other));
    await third.close();
    clock.advance(11 * 60_000);
    const fourth = keeperOn(file, { clock });
    await fourth.observe(fail(other));
    assert.equal(fourth.check(other).banned, false);
    assert.equal((await fourth.status()).jails.login?.currentlyFailed, 1);
    await fourth.close();
  });
});

describe('a large snapshot is restored a slice at a time', () => {
  const BANS = 50_000;
  const bigSnapshot = () => {
    const now = Date.now();
    const lines = Array.from({ length: BANS }, (_, i) =>
      JSON.stringify({
        jail: 'login',
        client: `31.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
        startMs: now,
        endMs: now + 3_600_000,
        banCount: 1,
        reason: 'maxRetry (3) failures within 10m',
        manual: false,
      }),
    );
    return `{"version":3,"savedAt":${now},\n"bans":[\n${lines.join(',\n')}\n],\n"history":[\n],\n"pardons":[\n],\n"failures":[\n]}\n`;
  };

  it('restores every ban after construction, without a long block, and the file reads as JSON', async () => {
    const file = fileName();
    const text = bigSnapshot();
    writeFileSync(file, text);
    assert.ok(statSync(file).size > 4 * 1024 * 1024, 'large enough to be read in slices');
    assert.equal(JSON.parse(text).bans.length, BANS);
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    histogram.enable();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const keeper = keeperOn(file);
    assert.equal(keeper.isReady, false, 'a large snapshot is not read in the constructor');
    await keeper.ready;
    await new Promise((resolve) => setTimeout(resolve, 10));
    histogram.disable();
    assert.equal(keeper.banCounts().login, BANS);
    assert.equal(keeper.check('31.0.1.2').banned, true);
    assert.ok(histogram.max / 1e6 < 200, `the loop was blocked ${(histogram.max / 1e6).toFixed(0)} ms`);
    await keeper.close();
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).bans.length, BANS, 'written back whole');
  });

  it("hands bans to the engine a slice behind the store's table, a turn of the event loop later", async () => {
    // Both tables grow their client Map at the same size, and a Map rehashes whole when it grows:
    // restored one ban at a time into both, the two rehashes fell in one slice.
    const file = fileName();
    writeFileSync(file, bigSnapshot());
    const store = createMemoryStore({ persist: file });
    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const calls: { held: number; turn: number }[] = [];
    const storeHeld = () => store.trackedClients.bans;
    await store.init({
      clock: { now: () => Date.now() },
      onBan: () => calls.push({ held: storeHeld(), turn: turns }),
      onUnban() {},
      isIgnored: () => false,
      warn() {},
    });
    running = false;
    assert.equal(calls.length, BANS);
    assert.equal(storeHeld(), BANS);
    // The engine's first ban came after the store had taken a whole slice, and in a later turn.
    assert.ok((calls[0] as { held: number }).held > 1, `the store held ${calls[0]?.held} at the first`);
    const turnsSeen = new Set(calls.map((c) => c.turn));
    assert.ok(turnsSeen.size >= 5, `announced over ${turnsSeen.size} turns`);
    for (let i = 1; i < calls.length; i++) {
      const a = calls[i - 1] as { held: number; turn: number };
      const b = calls[i] as { held: number; turn: number };
      // Within one turn the store's table does not move: no ban enters both tables in one slice.
      if (a.turn === b.turn) assert.equal(a.held, b.held);
    }
    await store.close();
  });

  it('a file cut short is moved aside; what it held before the cut is restored, and the warning says so', async () => {
    const file = fileName();
    const text = bigSnapshot();
    writeFileSync(file, text.slice(0, Math.floor(text.length * 0.9)));
    const warnings: { code: string; message: string }[] = [];
    const keeper = keeperOn(file);
    keeper.on('warning', (w) => warnings.push(w));
    await keeper.ready;
    await new Promise((resolve) => setImmediate(resolve));
    const restored = keeper.banCounts().login ?? 0;
    assert.ok(restored > BANS * 0.8 && restored < BANS, `${restored} restored`);
    assert.equal(warnings[0]?.code, 'JK_WRN_PERSIST_CORRUPT');
    assert.match(warnings[0]?.message ?? '', /cut short/);
    assert.match(warnings[0]?.message ?? '', new RegExp(`Restored ${restored.toLocaleString('en')} bans`));
    assert.equal(existsSync(file), false);
    await keeper.close();
  });
});
