/**
 * While the keeper closes (SIGTERM: `server.close()`, then `keeper.close()`), an attempt that needs
 * a slot is not admitted: it could no longer be recorded. It is answered 503 with its connection
 * closed, its handler never run; a request that needs no slot goes on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import express from 'express';
import request from 'supertest';

describe('admission while the keeper closes', () => {
  it('an attempt on a targeted route gets 503 and never reaches its handler', async () => {
    const keeper = createJailkeeper({
      logger: quietLogger,
      jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 5 } },
    });
    await keeper.ready;
    const app = express();
    let runs = 0;
    app.use(jailkeeper(keeper));
    app.post('/login', (_req, res) => {
      runs++;
      res.status(401).end();
    });
    app.get('/', (_req, res) => {
      res.end('ok');
    });
    // An attempt still in flight keeps close() waiting, so the keeper stays "closing" meanwhile.
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached: (() => void) | undefined;
    const inHandler = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const slow = express();
    slow.use(jailkeeper(keeper));
    slow.post('/login', async (_req, res) => {
      reached?.();
      await held;
      res.status(401).end();
    });
    const inFlight = request(slow).post('/login');
    const pending = inFlight.then((r) => r.status);
    // Closing starts once the attempt is in its handler (a fixed pause lost that race under load).
    await inHandler;
    const closing = keeper.close({ timeoutMs: 5000 });
    assert.equal(keeper.isClosing, true);
    const refused = await request(app).post('/login');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.connection, 'close');
    assert.equal(runs, 0, 'the handler never ran');
    assert.equal((await request(app).get('/')).status, 200, 'a request that needs no slot goes on');
    release?.();
    assert.equal(await pending, 401);
    await closing;
    assert.equal(keeper.droppedOnClose, 0);
  });
});
