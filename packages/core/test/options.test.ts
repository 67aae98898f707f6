import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JailkeeperOptions } from '../src/engine/options.js';
import { configWarnings, resolveOptions } from '../src/engine/resolve-options.js';
import { JailkeeperConfigError, JailkeeperError } from '../src/errors.js';
import { createMemoryStore } from '../src/store/memory-store.js';

const login = { statuses: [401], paths: ['/login'] };

/** [label, options, expected code, expected option path, message fragment]. */
const INVALID: Array<[string, unknown, string, string, RegExp?]> = [
  ['options not an object', 'jails', 'JK_ERR_INVALID_OPTION', ''],
  [
    'unknown top-level key',
    { jails: { login }, jail: {} },
    'JK_ERR_UNKNOWN_OPTION',
    'jail',
    /valid keys are jails, defaults/,
  ],
  [
    'fail2ban spelling maxretry',
    { jails: { login: { ...login, maxretry: 3 } } },
    'JK_ERR_UNKNOWN_OPTION',
    'jails.login.maxretry',
  ],
  ['jails missing', {}, 'JK_ERR_INVALID_OPTION', 'jails'],
  ['jails an array', { jails: [login] }, 'JK_ERR_INVALID_OPTION', 'jails'],
  ['no jail', { jails: {} }, 'JK_ERR_INVALID_OPTION', 'jails'],
  ['jail name with a space', { jails: { 'my jail': login } }, 'JK_ERR_INVALID_OPTION', 'jails.my jail'],
  ['jail name manual is reserved', { jails: { manual: login } }, 'JK_ERR_INVALID_OPTION', 'jails.manual'],
  [
    'jail recidive with recidive on',
    { jails: { recidive: login }, recidive: true },
    'JK_ERR_INVALID_OPTION',
    'jails.recidive',
  ],
  ['jail not an object', { jails: { login: 5 } }, 'JK_ERR_INVALID_OPTION', 'jails.login'],
  ['jail that counts nothing', { jails: { login: {} } }, 'JK_ERR_JAIL_MATCHES_NOTHING', 'jails.login'],
  [
    'maxRetry 0',
    { jails: { login: { ...login, maxRetry: 0 } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.maxRetry',
    /positive integer; received 0/,
  ],
  [
    'maxRetry 2.5',
    { jails: { login: { ...login, maxRetry: 2.5 } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.maxRetry',
  ],
  [
    'maxRetry a string',
    { jails: { login: { ...login, maxRetry: '5' } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.maxRetry',
  ],
  [
    'maxRetry negative',
    { jails: { login: { ...login, maxRetry: -1 } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.maxRetry',
  ],
  [
    'findTime prose',
    { jails: { login: { ...login, findTime: 'ten minutes' } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.findTime',
  ],
  [
    'findTime 0',
    { jails: { login: { ...login, findTime: 0 } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.findTime',
  ],
  [
    'findTime negative',
    { jails: { login: { ...login, findTime: -100 } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.findTime',
  ],
  [
    'banTime unknown unit',
    { jails: { login: { ...login, banTime: '10 fortnights' } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.banTime',
    /received "10 fortnights"/,
  ],
  [
    'banTime -2',
    { jails: { login: { ...login, banTime: -2 } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.banTime',
  ],
  [
    'banTime NaN',
    { jails: { login: { ...login, banTime: Number.NaN } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.banTime',
  ],
  [
    'banTime an object',
    { jails: { login: { ...login, banTime: {} } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.banTime',
  ],
  [
    'status 200 as a failure',
    { jails: { login: { statuses: [200] } } },
    'JK_ERR_INVALID_STATUS',
    'jails.login.statuses[0]',
  ],
  [
    'status 302 as a failure',
    { jails: { login: { statuses: [401, 302] } } },
    'JK_ERR_INVALID_STATUS',
    'jails.login.statuses[1]',
  ],
  [
    'status 600',
    { jails: { login: { statuses: [600] } } },
    'JK_ERR_INVALID_STATUS',
    'jails.login.statuses[0]',
  ],
  [
    'status a string',
    { jails: { login: { statuses: ['401'] } } },
    'JK_ERR_INVALID_STATUS',
    'jails.login.statuses[0]',
  ],
  ['statuses empty', { jails: { login: { statuses: [] } } }, 'JK_ERR_INVALID_OPTION', 'jails.login.statuses'],
  [
    'method with a space',
    { jails: { login: { ...login, methods: ['PO ST'] } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.methods[0]',
  ],
  [
    'path without a slash',
    { jails: { login: { statuses: [401], paths: ['login'] } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.paths[0]',
  ],
  [
    'path a number',
    { jails: { login: { statuses: [401], paths: [42] } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.paths[0]',
  ],
  [
    'global RegExp path',
    { jails: { login: { statuses: [401], paths: [/\/login/g] } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.paths[0]',
    /g or y flag/,
  ],
  [
    'exempt not an array',
    { jails: { login: { ...login, exempt: '/ws' } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.exempt',
  ],
  [
    'userAgents empty string',
    { jails: { bots: { userAgents: [''] } } },
    'JK_ERR_INVALID_OPTION',
    'jails.bots.userAgents[0]',
  ],
  [
    'scope unknown',
    { jails: { login: { ...login, scope: 'route' } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.scope',
  ],
  [
    'dryRun a string',
    { jails: { login: { ...login, dryRun: 'yes' } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.dryRun',
  ],
  [
    'increment unknown key',
    { jails: { login: { ...login, banTimeIncrement: { rndtime: 5 } } } },
    'JK_ERR_UNKNOWN_OPTION',
    'jails.login.banTimeIncrement.rndtime',
  ],
  [
    'increment factor 0',
    { jails: { login: { ...login, banTimeIncrement: { factor: 0 } } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.banTimeIncrement.factor',
  ],
  [
    'increment multipliers empty',
    { jails: { login: { ...login, banTimeIncrement: { multipliers: [] } } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.banTimeIncrement.multipliers',
  ],
  [
    'increment multiplier negative',
    { jails: { login: { ...login, banTimeIncrement: { multipliers: [1, -2] } } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.banTimeIncrement.multipliers[1]',
  ],
  [
    'increment maxTime bad',
    { jails: { login: { ...login, banTimeIncrement: { maxTime: 'soon' } } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.banTimeIncrement.maxTime',
  ],
  [
    'pardon overlaps failures',
    { jails: { login: { statuses: [401, 403], paths: ['/login'], pardon: { statuses: [403] } } } },
    'JK_ERR_PARDON_OVERLAP',
    'jails.login.pardon.statuses',
  ],
  [
    'pardon on an any-status jail',
    { jails: { wp: { paths: ['/login'], pardon: {} } } },
    'JK_ERR_PARDON_OVERLAP',
    'jails.wp.pardon.statuses',
  ],
  [
    'pardon without paths anywhere',
    { jails: { auth: { statuses: [401], pardon: {} } } },
    'JK_ERR_INVALID_OPTION',
    'jails.auth.pardon.paths',
  ],
  [
    'pardon maxRetry below maxRetry',
    { jails: { login: { ...login, maxRetry: 5, pardon: { maxRetry: 3 } } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.pardon.maxRetry',
  ],
  [
    'pardon for bad',
    { jails: { login: { ...login, pardon: { for: 'a month' } } } },
    'JK_ERR_INVALID_DURATION',
    'jails.login.pardon.for',
  ],
  [
    'pardon unknown key',
    { jails: { login: { ...login, pardon: { duration: '30d' } } } },
    'JK_ERR_UNKNOWN_OPTION',
    'jails.login.pardon.duration',
  ],
  [
    'ignoreIp bad CIDR',
    { jails: { login }, ignoreIp: ['10.0.0.0/33'] },
    'JK_ERR_INVALID_CIDR',
    'ignoreIp[0]',
  ],
  [
    'ignoreIp host bits',
    { jails: { login }, ignoreIp: ['127.0.0.1/8'] },
    'JK_ERR_INVALID_CIDR',
    'ignoreIp[0]',
    /did you mean 127\.0\.0\.0\/8/,
  ],
  ['ignoreIp hostname', { jails: { login }, ignoreIp: ['localhost'] }, 'JK_ERR_INVALID_CIDR', 'ignoreIp[0]'],
  ['ignoreIp a string', { jails: { login }, ignoreIp: '127.0.0.1' }, 'JK_ERR_INVALID_OPTION', 'ignoreIp'],
  [
    'recidive unknown key',
    { jails: { login }, recidive: { bantime: '1w' } },
    'JK_ERR_UNKNOWN_OPTION',
    'recidive.bantime',
  ],
  [
    'recidive unknown jail',
    { jails: { login }, recidive: { jails: ['ssh'] } },
    'JK_ERR_INVALID_OPTION',
    'recidive.jails',
  ],
  ['ipv6Subnet 0', { jails: { login }, ipv6Subnet: 0 }, 'JK_ERR_INVALID_OPTION', 'ipv6Subnet'],
  ['ipv6Subnet 129', { jails: { login }, ipv6Subnet: 129 }, 'JK_ERR_INVALID_OPTION', 'ipv6Subnet'],
  [
    'maxTrackedClients 0',
    { jails: { login }, maxTrackedClients: 0 },
    'JK_ERR_INVALID_OPTION',
    'maxTrackedClients',
  ],
  ['store not a store', { jails: { login }, store: {} }, 'JK_ERR_INVALID_OPTION', 'store'],
  [
    'persist with a store',
    { jails: { login }, store: createMemoryStore(), persist: 'x.json' },
    'JK_ERR_OPTION_CONFLICT',
    'persist',
  ],
  ['persist empty', { jails: { login }, persist: '' }, 'JK_ERR_INVALID_OPTION', 'persist'],
  ['logger without warn', { jails: { login }, logger: { info() {} } }, 'JK_ERR_INVALID_OPTION', 'logger'],
  ['clock without now', { jails: { login }, clock: Date }, 'JK_ERR_INVALID_OPTION', 'clock'],
  ['historyTime bad', { jails: { login }, historyTime: 'forever' }, 'JK_ERR_INVALID_DURATION', 'historyTime'],
  [
    'defaults bad maxRetry',
    { jails: { login }, defaults: { maxRetry: 0 } },
    'JK_ERR_INVALID_OPTION',
    'defaults.maxRetry',
  ],
  [
    'defaults unknown key',
    { jails: { login }, defaults: { port: 'http' } },
    'JK_ERR_UNKNOWN_OPTION',
    'defaults.port',
  ],
  [
    'statuses a word other than any',
    { jails: { login: { ...login, statuses: 'all' } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.statuses',
    /or "any"/,
  ],
  [
    'pardon methods the jail does not count',
    { jails: { login: { ...login, methods: ['POST'], pardon: { methods: ['GET'] } } } },
    'JK_ERR_INVALID_OPTION',
    'jails.login.pardon.methods',
    /methods the jail counts \(POST\); received "GET"/,
  ],
  [
    'pardon on a GET-only jail without its methods',
    { jails: { secret: { statuses: [401], methods: ['GET'], paths: ['/secret'], pardon: {} } } },
    'JK_ERR_INVALID_OPTION',
    'jails.secret.pardon.methods',
    /\["GET"\] for HTTP Basic/,
  ],
];

describe('invalid configurations', () => {
  it('has at least 40 rows', () => assert.ok(INVALID.length >= 40, `${INVALID.length} rows`));
  for (const [label, options, code, path, message] of INVALID) {
    it(`${label}: ${code} at ${path || '(root)'}`, () => {
      assert.throws(
        () => resolveOptions(options as JailkeeperOptions),
        (error: unknown) => {
          assert.ok(error instanceof JailkeeperConfigError, 'a JailkeeperConfigError');
          assert.ok(error instanceof TypeError, 'config errors are TypeErrors');
          assert.ok(error instanceof JailkeeperError, 'and JailkeeperErrors');
          assert.equal(error.code, code);
          if (path !== '') assert.equal(error.option, path);
          assert.match(error.message, /See https:\/\/\S+\/docs\/errors\.md#jk_err_/);
          if (message) assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

describe('valid configurations', () => {
  it('applies fail2ban defaults and parses durations once', () => {
    const r = resolveOptions({ jails: { login } });
    const jail = r.jails[0];
    assert.equal(jail?.maxRetry, 5);
    assert.equal(jail?.findTimeMs, 600_000);
    assert.equal(jail?.banTimeMs, 600_000);
    assert.equal(jail?.scope, 'app');
    assert.equal(r.maxTrackedClients, 100_000);
    assert.equal(r.ipv6Subnet, 64);
    assert.ok(Object.isFrozen(r) && Object.isFrozen(jail));
  });
  it('takes permanent bans, defaults, disabled jails and pardon defaults', () => {
    const r = resolveOptions({
      defaults: { maxRetry: 3, banTime: '1h' },
      jails: {
        login: { ...login, banTime: 'permanent', pardon: {} },
        off: { statuses: [404], enabled: false },
        scan: { statuses: [404], banTime: -1 },
      },
    });
    assert.deepEqual(
      r.jails.map((j) => [j.name, j.maxRetry, j.banTimeMs]),
      [
        ['login', 3, Number.POSITIVE_INFINITY],
        ['scan', 3, Number.POSITIVE_INFINITY],
      ],
    );
    assert.equal(r.jails[0]?.pardon?.maxRetry, 12);
    assert.equal(r.jails[0]?.pardon?.forMs, 30 * 24 * 3600_000);
    assert.equal(r.jails[0]?.pardon?.paths.matchesRoute('/login', false), true);
  });
  it("pardon methods: by default those that carry a credential in a body, among the jail's", () => {
    const methodsOf = (jail: Record<string, unknown>) => [
      ...(resolveOptions({ jails: { login: { ...login, ...jail } } }).jails[0]?.pardon?.methods ?? []),
    ];
    assert.deepEqual(methodsOf({ pardon: {} }), ['POST', 'PUT', 'PATCH']);
    assert.deepEqual(methodsOf({ methods: ['post', 'GET'], pardon: {} }), ['POST']);
    // Named: HEAD and OPTIONS only then, HEAD where the jail counts GET.
    assert.deepEqual(methodsOf({ methods: ['GET'], pardon: { methods: ['get', 'HEAD'] } }), ['GET', 'HEAD']);
    assert.deepEqual(methodsOf({ pardon: { methods: ['OPTIONS'] } }), ['OPTIONS']);
  });
  it("statuses: 'any' counts every status and says so: no warning", () => {
    const any = resolveOptions({ jails: { trap: { statuses: 'any', paths: ['/wp-login.php'] } } });
    assert.equal(any.jails[0]?.statuses, null);
    assert.deepEqual(configWarnings(any), []);
    const unsaid = resolveOptions({
      jails: { login: { paths: ['/login'] }, bots: { userAgents: ['sqlmap'] } },
    });
    assert.deepEqual(
      configWarnings(unsaid).map((w) => [w.code, w.option]),
      [['JK_WRN_COUNTS_EVERY_STATUS', 'jails.login.statuses']],
    );
    assert.match(configWarnings(unsaid)[0]?.message ?? '', /successes included.*statuses: "any"/);
  });
  it('accepts the unsafe full whitelist (pardon maxRetry Infinity)', () => {
    const r = resolveOptions({
      jails: { login: { ...login, pardon: { maxRetry: Number.POSITIVE_INFINITY } } },
    });
    assert.equal(r.jails[0]?.pardon?.maxRetry, Number.POSITIVE_INFINITY);
  });
});
