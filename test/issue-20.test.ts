/**
 * Issue 20: trustedProxies speaks Express's `trust proxy` language as proxy-addr reads it. Played
 * through every adapter: an app that ports `trust proxy: 'uniquelocal'` with its proxy at 10.1.2.3
 * must ban the client behind it, not the proxy (which would refuse every user).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createJailkeeper, type JailkeeperConfigError, type JailkeeperOptions } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { type App, FRAMEWORKS } from './adapters-harness.js';

const JAILS: JailkeeperOptions['jails'] = { login: { statuses: [401], paths: ['/login'], maxRetry: 2 } };
const PROXY = '10.1.2.3';

const open: App[] = [];
after(async () => {
  await Promise.all(open.map((a) => a.close()));
});

/** Mallory fails the login through the proxy until banned; then Alice, behind the same proxy, asks. */
async function play(app: App, keeper: ReturnType<typeof createJailkeeper>) {
  // The proxy writes the client it saw; the app's peer is the proxy.
  const via = (client: string) => ({ 'x-forwarded-for': client });
  for (let i = 0; i < 2; i++) {
    const r = await app.inject({
      method: 'POST',
      url: '/login',
      headers: via('198.51.100.66'),
      remoteAddress: PROXY,
    });
    assert.equal(r.statusCode, 401);
    assert.equal(r.headers['x-handler'], 'login');
  }
  await keeper.idle();
  const mallory = await app.inject({ url: '/public', headers: via('198.51.100.66'), remoteAddress: PROXY });
  const alice = await app.inject({ url: '/public', headers: via('198.51.100.7'), remoteAddress: PROXY });
  return { mallory, alice };
}

const SETTINGS: Array<[string, JailkeeperOptions['trustedProxies']]> = [
  ['uniquelocal', 'uniquelocal'],
  ['a netmask', ['10.1.2.0/255.255.255.0']],
  ['a predicate returning a truthy non-boolean', (address: string) => (address === PROXY ? 1 : 0)],
];

for (const framework of FRAMEWORKS) {
  describe(`issue 20 through ${framework.name}`, () => {
    for (const [label, trustedProxies] of SETTINGS) {
      it(`trustedProxies ${label}: the client behind ${PROXY} is banned, not the proxy`, async () => {
        const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, trustedProxies });
        const app = await framework.start(keeper);
        open.push(app);
        const { mallory, alice } = await play(app, keeper);
        assert.equal(mallory.statusCode, 403);
        assert.equal(mallory.headers['x-handler'], undefined, 'no handler ran for the banned client');
        assert.equal(alice.statusCode, 200);
        assert.equal(alice.headers['x-handler'], 'public', 'the handler ran for the other user');
        assert.equal(keeper.check(PROXY).banned, false);
        await app.close();
        await keeper.close();
      });
    }
  });
}

describe("issue 20: trustedProxies: 'express'", () => {
  it('is refused by the Fastify adapter at registration, with a coded error', async () => {
    const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, trustedProxies: 'express' });
    for (const framework of FRAMEWORKS.filter((f) => f.name.startsWith('fastify'))) {
      await assert.rejects(
        () => framework.start(keeper),
        (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST' && e.option === 'trustedProxies',
        framework.name,
      );
    }
    await keeper.close();
  });
});
