/**
 * `trustedProxies: 'express'` against Express itself: `req.ip` (proxy-addr, under the app's
 * `trust proxy`) is the ground truth, for Express 5 and 4, on the same peers and headers.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import {
  createJailkeeper,
  type FailureEvent,
  type JailkeeperConfigError,
  type JailkeeperOptions,
} from '@jailkeeper/core';
import { canonicalIp } from '@jailkeeper/core/adapter';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { appTrust } from '../src/app-trust.js';
import { jailkeeper } from '../src/index.js';

const EXPRESSES = [
  ['express 5', express5],
  ['express 4', express4 as unknown as typeof express5],
] as const;

const quiet = { info() {}, warn() {}, error() {} };
const jails: JailkeeperOptions['jails'] = { who: { statuses: [401], maxRetry: 1_000_000 } };

/** `req.ip` and `req.ips` exactly as Express computes them, for any peer, without a socket. */
function expressSees(app: express5.Express, peer: string, xff: string | undefined) {
  const req = Object.create(app.request, {
    socket: { value: { remoteAddress: peer } },
    connection: { value: { remoteAddress: peer } },
    headers: { value: xff === undefined ? {} : { 'x-forwarded-for': xff } },
  }) as express5.Request;
  return { ip: req.ip as string | undefined, ips: req.ips };
}

/** Express leaves a port or brackets on an entry it did not trust; jailkeeper drops them (same client). */
function sameClient(text: string): string | undefined {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return canonicalIp(bracketed[1] as string);
  const v4port = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(text);
  return canonicalIp(v4port ? (v4port[1] as string) : text);
}

const SETTINGS: Array<[string, unknown]> = [
  ['unset (false)', false],
  ['loopback', 'loopback'],
  ['uniquelocal', 'uniquelocal'],
  ['linklocal', 'linklocal'],
  ['loopback and uniquelocal', ['loopback', 'uniquelocal']],
  ['a comma-separated string', 'loopback, 10.0.0.1'],
  ['10.0.0.0/8', '10.0.0.0/8'],
  ['a host-bit CIDR (Express accepts it)', '10.0.0.2/26'],
  ['a netmask', '10.0.0.0/255.255.255.192'],
  ['an IPv6 CIDR', 'fe80::/125'],
  ['a mapped CIDR with host bits', '::ffff:a00:2/122'],
  ['a function', (addr: string) => /^10\./.test(addr)],
  ['true (with the opt-in)', true],
  ['a hop count (with the opt-in)', 2],
];
const PEERS = [
  '127.0.0.1',
  '::ffff:127.0.0.1',
  '::1',
  '10.0.0.1',
  '::ffff:a00:1',
  '10.0.0.63',
  '10.0.0.64',
  '172.16.0.5',
  '172.32.0.1',
  '192.168.0.1',
  '203.0.113.9',
  'fe80::1',
  'fe80::ff00',
  '2001:db8::1',
];
const HEADERS = [
  undefined,
  '',
  '198.51.100.7',
  '10.0.0.2',
  '192.168.0.1, 10.0.0.2',
  '10.0.0.3, 192.168.0.1, 10.0.0.2',
  '192.168.0.1, 10.0.0.200',
  '2002:c000:203::1, fe80::2',
  '2002:c000:203::1, fe80::ff00',
  '198.51.100.7, 127.0.0.1',
  '::ffff:198.51.100.7, 10.0.0.2',
  '6.6.6.6, 198.51.100.7, 172.16.0.9, 10.0.0.1',
  '198.51.100.7, , 10.0.0.2',
  ' 198.51.100.7 ,10.0.0.200 ',
  '198.51.100.7:4711, 10.0.0.2',
  '[2001:db8::7]:443, 10.0.0.2',
  'myrouter, 127.0.0.1, proxy',
  'myrouter, 10.0.0.2, proxy',
  'unknown',
];

for (const [name, express] of EXPRESSES) {
  describe(`trustedProxies: 'express' on ${name}`, () => {
    it(`resolves req.ip for ${SETTINGS.length} trust proxy settings × ${PEERS.length} peers × ${HEADERS.length} headers`, async (t) => {
      const keeper = createJailkeeper({
        jails,
        logger: quiet,
        trustedProxies: 'express',
        dangerouslyTrustAllProxies: true,
      });
      let agreed = 0;
      let notAddress = 0;
      for (const [label, setting] of SETTINGS) {
        const app = express();
        app.set('trust proxy', setting);
        const trust = appTrust(keeper, app);
        for (const peer of PEERS) {
          for (const xff of HEADERS) {
            const seen = expressSees(app, peer, xff);
            const headers = xff === undefined ? {} : { 'x-forwarded-for': xff };
            const ours = keeper.resolve(peer, headers, undefined, trust)?.ip;
            const where = `${label}: peer ${peer}, X-Forwarded-For ${JSON.stringify(xff)}: req.ip ${JSON.stringify(seen.ip)}`;
            // Express's chain from the socket to the client; jailkeeper stops at its first entry that
            // is not an address (documented difference: 'proxy' is never a client, nor asked about)
            // and takes the address just before it, the last trusted hop.
            const chain = [peer, ...[...seen.ips].reverse()];
            const stop = chain.findIndex((entry) => sameClient(entry) === undefined);
            if (stop === -1) {
              assert.equal(ours, sameClient(seen.ip as string), where);
              agreed++;
            } else {
              assert.equal(ours, sameClient(chain[stop - 1] as string), where);
              notAddress++;
            }
          }
        }
      }
      assert.equal(agreed + notAddress, SETTINGS.length * PEERS.length * HEADERS.length);
      assert.ok(notAddress > 0 && agreed > notAddress * 10, `${agreed} agreed, ${notAddress} not an address`);
      t.diagnostic(
        `${agreed} cases agree with req.ip; ${notAddress} meet a header entry that is not an address`,
      );
      await keeper.close();
    });

    it("jailkeeper's own trustedProxies, written as trust proxy is, trusts exactly what Express trusts", async () => {
      // Boundaries of every named range and of a netmask, both families, mapped forms too: a name
      // or a netmask must never trust an address Express does not (nor miss one it does).
      const probes = [
        ...['126.255.255.255', '127.0.0.0', '127.255.255.255', '128.0.0.0', '::', '::1', '::2'],
        ...['169.253.255.255', '169.254.0.0', '169.254.255.255', '169.255.0.0'],
        ...[
          'fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'fe80::',
          'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'fec0::',
        ],
        ...['9.255.255.255', '10.0.0.0', '10.255.255.255', '11.0.0.0', '172.15.255.255', '172.16.0.0'],
        ...[
          '172.31.255.255',
          '172.32.0.0',
          '192.167.255.255',
          '192.168.0.0',
          '192.168.255.255',
          '192.169.0.0',
        ],
        ...[
          'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'fc00::',
          'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'fe00::',
        ],
        ...['10.0.0.63', '10.0.0.64', '::ffff:10.0.0.63', '::ffff:a00:40', '::ffff:127.0.0.1', '100.64.0.1'],
      ];
      const settings: unknown[] = [
        'loopback',
        'linklocal',
        'uniquelocal',
        ['loopback', 'linklocal', 'uniquelocal'],
        '10.0.0.0/255.255.255.192',
        '10.0.0.0/255.0.0.0',
        'loopback, 10.0.0.0/26',
        '::ffff:a00:0/122',
        'fc00::/7',
      ];
      for (const setting of settings) {
        const app = express();
        app.set('trust proxy', setting);
        const keeper = createJailkeeper({ jails, logger: quiet, trustedProxies: setting as string });
        for (const peer of probes) {
          const headers = { 'x-forwarded-for': '198.51.100.7' };
          const expressTrusts = expressSees(app, peer, headers['x-forwarded-for']).ip === '198.51.100.7';
          const jailkeeperTrusts = keeper.resolve(peer, headers)?.ip === '198.51.100.7';
          assert.equal(jailkeeperTrusts, expressTrusts, `${JSON.stringify(setting)} and peer ${peer}`);
        }
        await keeper.close();
      }
    });

    it('through the middleware: the banned and counted client is req.ip, and the trust function is looked up once', async () => {
      const keeper = createJailkeeper({ jails, logger: quiet, trustedProxies: 'express' });
      const failures: FailureEvent[] = [];
      keeper.on('failure', (f) => failures.push(f));
      const app = express();
      app.set('trust proxy', 'loopback, uniquelocal');
      let lookups = 0;
      const get = app.get.bind(app) as (setting: string) => unknown;
      (app as unknown as { get: unknown }).get = (...args: unknown[]) => {
        if (args.length === 1 && args[0] === 'trust proxy fn') lookups++;
        return (get as (...a: unknown[]) => unknown)(...args);
      };
      const ips: string[] = [];
      let runs = 0;
      app.use(jailkeeper(keeper));
      app.get('/who', (req, res) => {
        runs++;
        ips.push(req.ip as string);
        res.status(401).end();
      });
      const forwarded = ['198.51.100.7', '6.6.6.6, 198.51.100.8, 10.1.2.3', '192.168.0.9, 203.0.113.5'];
      for (const xff of forwarded) {
        const r = await request(app).get('/who').set('x-forwarded-for', xff);
        assert.equal(r.status, 401);
      }
      await keeper.idle();
      assert.equal(runs, forwarded.length);
      assert.deepEqual(
        failures.map((f) => f.ip),
        ['198.51.100.7', '198.51.100.8', '203.0.113.5'],
      );
      assert.deepEqual(
        failures.map((f) => f.ip),
        ips.map((ip) => canonicalIp(ip)),
      );
      // One lookup by the middleware for the app; each req.ip in the handler made its own.
      assert.equal(lookups, 1 + ips.length);
      await keeper.close();
    });

    it('refuses an app that trusts every peer (true, a hop count) unless dangerouslyTrustAllProxies', async () => {
      const keeper = createJailkeeper({ jails, logger: quiet, trustedProxies: 'express' });
      for (const setting of [true, 1]) {
        const app = express();
        app.set('trust proxy', setting);
        assert.throws(
          () => appTrust(keeper, app),
          (e: JailkeeperConfigError) => e.code === 'JK_ERR_UNSAFE_TRUST' && e.option === 'trustedProxies',
        );
        const jk = jailkeeper(keeper);
        const server = createServer(app);
        assert.throws(
          () => jk.guard(server),
          (e: JailkeeperConfigError) => e.code === 'JK_ERR_UNSAFE_TRUST',
          'at startup, when the guard reads the app',
        );
        let runs = 0;
        app.use(jk);
        app.get('/', (_req, res) => {
          runs++;
          res.end();
        });
        const r = await request(app).get('/');
        assert.equal(r.status, 500, 'no request is served on a refused setting');
        assert.equal(runs, 0);
      }
      await keeper.close();
    });

    it('jk.guard finds the app of its server, or takes { app }, and refuses a server without one', async () => {
      const keeper = createJailkeeper({ jails, logger: quiet, trustedProxies: 'express' });
      const jk = jailkeeper(keeper);
      const app = express();
      app.set('trust proxy', 'loopback');
      jk.guard(createServer(app))();
      assert.throws(
        () => jk.guard(createServer()),
        (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST',
      );
      jk.guard(createServer(), { app })();
      await keeper.close();
    });
  });
}

describe("trustedProxies: 'express' outside the Express adapter", () => {
  it('a non-Express app handed to the middleware is a coded error, not a crash', async () => {
    const keeper = createJailkeeper({ jails, logger: quiet, trustedProxies: 'express' });
    assert.throws(
      () => appTrust(keeper, { get: () => undefined, set() {}, handle() {} }),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST',
    );
    assert.throws(
      () => appTrust(keeper, undefined),
      (e: JailkeeperConfigError) => e.code === 'JK_ERR_EXPRESS_TRUST',
    );
    await keeper.close();
  });
});
