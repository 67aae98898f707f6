/**
 * A streamed login that writes its status first, checks the password, then marks the request
 * failed (`fail()`): the attempt's slot settled at the status, but the late mark still counts, so
 * sequential guesses are banned at maxRetry as before the attempt settled at its decision.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJailkeeper, type Jailkeeper } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import express from 'express';
import fastify from 'fastify';
import request from 'supertest';

const keeperFor = (): Jailkeeper =>
  createJailkeeper({
    logger: quietLogger,
    jails: { login: { statuses: [401], paths: ['/login'], methods: ['POST'], maxRetry: 5 } },
  });

describe('fail() after the status was written', () => {
  it('Express: 20 guesses on a streamed login run the check 5 times, then the client is banned', async () => {
    const keeper = keeperFor();
    const jk = jailkeeper(keeper);
    const app = express();
    let runs = 0;
    app.use(jk);
    app.post('/login', (req, res) => {
      runs++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('checking…\n');
      jk.fail(req); // the password was wrong
      res.end('no\n');
    });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await request(app).post('/login')).status);
    assert.equal(runs, 5, statuses.join(' '));
    assert.ok(keeper.check('::ffff:127.0.0.1').banned || keeper.check('127.0.0.1').banned);
    await keeper.close();
  });

  it('Fastify: the same with request.jailkeeper.fail()', async () => {
    const keeper = keeperFor();
    const app = fastify();
    let runs = 0;
    await app.register(jailkeeperPlugin, { keeper });
    app.post('/login', (request, reply) => {
      runs++;
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      reply.raw.write('checking…\n');
      request.jailkeeper.fail();
      reply.raw.end('no\n');
    });
    await app.ready();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await request(app.server).post('/login')).status);
    assert.equal(runs, 5, statuses.join(' '));
    await app.close();
    await keeper.close();
  });
});
