import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ResponseEvent } from '../src/engine/events.js';
import { createJailkeeper, type Jailkeeper, kResponses } from '../src/engine/keeper.js';
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

describe('close() loses nothing in flight', () => {
  it('waits for an admitted attempt to be counted, and its ban is in the snapshot', async () => {
    const file = fileName();
    const keeper = keeperOn(file);
    const client = '203.0.113.7';
    await keeper.observe(fail(client));
    await keeper.observe(fail(client));
    // An adapter admitted the third guess; its handler is still running when close() is called.
    keeper[kResponses](1);
    let closed = false;
    const closing = keeper.close().then(() => {
      closed = true;
    });
    assert.equal(keeper.isClosing, true);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(closed, false, 'close() did not wait for the attempt in flight');
    await keeper.observe(fail(client));
    keeper[kResponses](-1);
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
    keeper[kResponses](1);
    keeper[kResponses](1);
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
