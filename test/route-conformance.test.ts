/**
 * The route conformance matrix (issue 13): on every router shape and every spelling of a path,
 * jailkeeper's decision agrees with the handler the router really ran. A row names a request and
 * the handler its router runs (the probe checks that claim); the jails the response counts in,
 * the pardons it earns and whether a client banned in the jail-scope jails is refused all follow
 * from that handler's meaning in the app (route-conformance-apps.ts), never from jailkeeper.
 */
import { after, describe, it } from 'node:test';
import {
  createJailkeeper,
  createMemoryStore,
  type FailureEvent,
  type Jailkeeper,
  type PardonEvent,
} from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import {
  type ExpressSettings,
  type FastifySettings,
  JAILS,
  MEANINGS,
  SCOPED_JAILS,
  startExpress,
  startFastify,
} from './route-conformance-apps.js';
import {
  addresses,
  EXPRESS,
  FASTIFY,
  type FrameworkName,
  type Meaning,
  type Row,
  type RunningApp,
  runRow,
  tally,
  type Wire,
} from './route-conformance-harness.js';

const AUTH = { authorization: 'secret' };
const OVERRIDE = (method: string) => ({ 'x-http-method-override': method });

function row(name: string, wire: Wire, ran: Row['ran']): Row {
  return { name, wire, ran };
}
const post = (target: string, ran: Row['ran'], headers?: Record<string, string>) =>
  row(`POST ${target}`, { method: 'POST', target, ...(headers ? { headers } : {}) }, ran);
const get = (target: string, ran: Row['ran']) => row(`GET ${target}`, { method: 'GET', target }, ran);
const req = (method: string, target: string, ran: Row['ran'], headers?: Record<string, string>) =>
  row(`${method} ${target}`, { method, target, ...(headers ? { headers } : {}) }, ran);

/**
 * Express with its defaults: case-insensitive, not strict. Express matches the raw path: it never
 * decodes percent-escapes, resolves dot segments, strips `;params` or collapses slashes before
 * matching, so those spellings reach another route (the catch-all page) or none.
 */
const EXPRESS_DEFAULT: Row[] = [
  // top-level routes and their spellings
  post('/login', 'login'),
  post('/LOGIN', 'login'),
  post('/Login/', 'login'),
  post('/login/', 'login'),
  post('/login?next=/admin', 'login'),
  post('//login', null),
  post('/login//', null),
  post('/%6Cogin', null),
  post('/login;jsessionid=1', null),
  post('/./login', null),
  post('/x/../login', null),
  post('/login%2F', null),
  post('http://x/login', 'login'),
  post('http://x/LOGIN/', 'login'),
  post('/login', 'login:ok', AUTH),
  get('/login', 'loginPage'),
  req('HEAD', '/login', 'loginPage'),
  req('OPTIONS', '/login', null),
  get('/%6Cogin', 'page'),
  get('/login;x', 'page'),
  get('/LOGIN', 'loginPage'),
  // HEAD and OPTIONS on a GET-only jail
  get('/me', 'me'),
  req('HEAD', '/me', 'me'),
  req('HEAD', '/ME/', 'me'),
  req('OPTIONS', '/me', null),
  post('/me', null),
  // parameters and method override
  req('PUT', '/users/7/password', 'password'),
  req('PUT', '/USERS/7/Password/', 'password'),
  req('PUT', '/users/%37/password', 'password'),
  req('PUT', 'http://x/users/7/password', 'password'),
  post('/users/7/password', 'passwordPost'),
  post('/users/7/password', 'password', OVERRIDE('PUT')),
  post('/users/7/password', 'password', OVERRIDE('put')),
  post('/users/7/password', null, OVERRIDE('DELETE')),
  req('GET', '/users/7/password', null, OVERRIDE('PUT')),
  // app.all
  get('/any', 'any'),
  post('/ANY/', 'any'),
  req('DELETE', '/any', 'any'),
  req('HEAD', '/any', 'any'),
  req('OPTIONS', '/any', 'any'),
  // array paths
  post('/signin', 'arrayLogin'),
  post('/LOG-IN/', 'arrayLogin'),
  post('/mixed-a', 'mixed:/mixed-a'),
  post('/MIXED-B', 'mixed:/mixed-b'),
  // a RegExp route
  post('/rx-login', 'rx'),
  post('/RX-Login/', 'rx'),
  post('/rx-login;x', null),
  // route-level middleware
  get('/exempt', 'exemptRoute'),
  get('/EXEMPT/', 'exemptRoute'),
  get('/only-login', 'onlyLogin'),
  post('/hooks/github', 'hook'),
  post('/HOOKS/github/', 'hook'),
  get('/hooks/status', 'hookStatus'),
  get('/admin', 'admin'),
  get('/ADMIN/', 'admin'),
  get('http://x/admin', 'admin'),
  // a rule spelled in another case than the route: the router folds case, so do the rules
  get('/mixed-case', 'mixedCase'),
  // app.use handlers: /ws (exempt) and an auth gate
  get('/ws', 'ws'),
  get('/WS', 'ws'),
  get('/ws/', 'ws'),
  get('/ws/chat', 'ws'),
  get('/Ws/chat/room', 'ws'),
  get('/wsx', 'page'),
  get('http://x/ws', 'ws'),
  post('/api/login', 'apiGate'),
  post('/API/LOGIN', 'apiGate'),
  post('/api/login/', 'apiGate'),
  get('/api/login/extra', 'apiGate'),
  post('/api/login', 'apiLoginOk', AUTH),
  // routers nested three deep
  post('/api/v1/auth/login', 'deepLogin'),
  post('/API/V1/Auth/Login', 'deepLogin'),
  post('/api/v1/auth/login/', 'deepLogin'),
  post('/api/v1//auth/login', { 'express 4': 'deepLogin', 'express 5': null }),
  post('http://x/api/v1/auth/login', 'deepLogin'),
  get('/api/v1/auth/ws', 'deepWs'),
  // a parameter mount
  post('/t/acme/login', 'tenantLogin'),
  post('/T/acme/LOGIN', 'tenantLogin'),
  post('/t/ACME/login/', 'tenantLogin'),
  post('/t/%61cme/login', 'tenantLogin'),
  get('/t/acme/users/5', 'tenantUser'),
  // a case-sensitive, strict router inside a case-insensitive app
  post('/cs/login', 'csLogin'),
  post('/CS/login', 'csLogin'),
  post('/cs/LOGIN', null),
  post('/cs/login/', null),
  // sub-apps, with and without the middleware of their own
  post('/sub/login', 'subLogin'),
  post('/SUB/Login', 'subLogin'),
  get('/sub/ws', 'subWs'),
  post('/bare/login', 'bareLogin'),
  post('/BARE/LOGIN/', 'bareLogin'),
  get('/bare/ws', 'bareWs'),
  // wildcards and several parameters in a segment
  get('/files/a/b', 'files'),
  get('/FILES/x', 'files'),
  get('/range/1-5', 'range'),
];

/** Express with `case sensitive routing` and `strict routing`. */
const EXPRESS_STRICT: Row[] = [
  post('/login', 'login'),
  post('/LOGIN', null),
  post('/login/', null),
  get('/LOGIN', 'page'),
  get('/login/', null),
  get('/Login', 'page'),
  post('http://x/login', 'login'),
  post('http://x/Login', null),
  get('/me', 'me'),
  get('/ME', 'page'),
  req('HEAD', '/me', 'me'),
  req('PUT', '/users/7/password', 'password'),
  req('PUT', '/Users/7/password', null),
  post('/users/7/password', 'password', OVERRIDE('PUT')),
  get('/ws', 'ws'),
  get('/WS', 'page'),
  get('/ws/chat', 'ws'),
  get('/admin', 'admin'),
  get('/Admin', 'page'),
  post('/api/login', 'apiGate'),
  post('/API/login', null),
  // routers made with express.Router() do not inherit the app's settings: case-insensitive inside
  post('/api/v1/auth/login', 'deepLogin'),
  post('/api/V1/AUTH/LOGIN', 'deepLogin'),
  post('/API/v1/auth/login', null),
  post('/t/acme/login', 'tenantLogin'),
  post('/t/acme/LOGIN', 'tenantLogin'),
  post('/cs/login', 'csLogin'),
  post('/CS/login', null),
];

/**
 * Fastify with its defaults: case-sensitive, trailing and duplicate slashes significant. Its
 * router (find-my-way) decodes percent-escapes before matching; `;` ends the path on Fastify 4
 * only (`useSemicolonDelimiter`); absolute-form targets are routed by their path. Method override does not
 * apply: the router runs the route of the method on the wire (a hook runs after routing), so an
 * override header changes nothing.
 */
const FASTIFY_DEFAULT: Row[] = [
  post('/login', 'login'),
  post('/LOGIN', null),
  post('/login/', null),
  post('//login', null),
  post('/%6Cogin', 'login'),
  post('/login;jsessionid=1', { 'fastify 4': 'login', 'fastify 5': null }),
  post('/./login', null),
  post('/x/../login', null),
  post('/login?next=/admin', 'login'),
  post('http://x/login', 'login'),
  post('http://x/LOGIN', null),
  req('PUT', 'http://x/users/7/password', 'password'),
  get('http://x/ws', 'ws'),
  get('http://x/admin', 'admin'),
  post('/login', 'login:ok', AUTH),
  get('/login', 'loginPage'),
  req('HEAD', '/login', 'loginPage'),
  req('OPTIONS', '/login', null),
  get('/LOGIN', 'page'),
  get('/login;x', { 'fastify 4': 'loginPage', 'fastify 5': 'page' }),
  get('/me', 'me'),
  req('HEAD', '/me', 'me'),
  req('OPTIONS', '/me', null),
  get('/ME', 'page'),
  req('PUT', '/users/7/password', 'password'),
  req('PUT', '/users/%37/password', 'password'),
  req('PUT', '/Users/7/password', null),
  post('/users/7/password', 'passwordPost'),
  post('/users/7/password', 'passwordPost', OVERRIDE('PUT')),
  get('/any', 'any'),
  req('DELETE', '/any', 'any'),
  req('HEAD', '/any', 'any'),
  get('/rx/12/login', 'rxLogin'),
  get('/rx/ab/login', null),
  get('/ws', 'ws'),
  get('/ws/chat', 'wsAny'),
  get('/%77s', 'ws'),
  get('/WS', 'page'),
  get('/exempt', 'exemptRoute'),
  get('/only-login', 'onlyLogin'),
  get('/admin', 'admin'),
  get('/%61dmin', 'admin'),
  get('/mixed-case', 'mixedCase'),
  get('/files/a/b', 'files'),
  get('/range/1-5', 'range'),
  // declared before the plugin: config honoured, rules applied
  get('/early', 'early'),
  post('/early-login', 'earlyLogin'),
  post('/plugin-early/login', 'pluginEarlyLogin'),
  // prefixes nested three deep
  post('/api/v1/auth/login', 'deepLogin'),
  post('/api/v1/auth/%6Cogin', 'deepLogin'),
  post('/api/v1/auth/login/', null),
  post('/API/v1/auth/login', null),
  get('/api/v1/auth/ws', 'deepWs'),
  // a parameter prefix
  post('/t/acme/login', 'tenantLogin'),
  post('/t/ACME/login', 'tenantLogin'),
  post('/t/acme/Login', null),
  get('/t/acme/users/5', 'tenantUser'),
  // an encapsulated plugin
  post('/enc/login', 'encLogin'),
  get('/enc/ws', 'encWs'),
  get('/enc/admin', 'encAdmin'),
];

/** Fastify with `caseSensitive: false`, `ignoreTrailingSlash` and `ignoreDuplicateSlashes`. */
const FASTIFY_RELAXED: Row[] = [
  post('/login', 'login'),
  post('/LOGIN', 'login'),
  post('/login/', 'login'),
  post('//login', 'login'),
  post('/Login//', 'login'),
  post('/%4Cogin', 'login'),
  get('/LOGIN', 'loginPage'),
  req('HEAD', '/Login/', 'loginPage'),
  get('/ME/', 'me'),
  req('HEAD', '/ME', 'me'),
  req('PUT', '/USERS/7/Password/', 'password'),
  post('/USERS/7/PASSWORD', 'passwordPost'),
  get('/ANY', 'any'),
  get('/WS', 'ws'),
  get('/WS/chat', 'wsAny'),
  get('/Exempt/', 'exemptRoute'),
  get('/ADMIN', 'admin'),
  get('/Mixed-Case', 'mixedCase'),
  get('/EARLY', 'early'),
  post('/Early-Login/', 'earlyLogin'),
  post('/API/V1/AUTH/LOGIN', 'deepLogin'),
  post('/api//v1/auth//login/', 'deepLogin'),
  get('/Api/V1/Auth/WS', 'deepWs'),
  post('/T/acme/LOGIN/', 'tenantLogin'),
  post('/ENC/LOGIN', 'encLogin'),
  get('/ENC/WS', 'encWs'),
  get('/Files/a', 'files'),
  post('/login', 'login:ok', AUTH),
];

interface Scenario {
  readonly name: string;
  /** Meanings that differ in this app: a rule spelled in another case names a route only where the router folds case. */
  readonly meanings?: Readonly<Record<string, Meaning>>;
  readonly frameworks: readonly FrameworkName[];
  readonly rows: readonly Row[];
  start(framework: FrameworkName, keeper: Jailkeeper): Promise<RunningApp>;
}

const expressScenario = (name: string, rows: Row[], settings: ExpressSettings): Scenario => ({
  name,
  frameworks: EXPRESS,
  rows,
  start: (framework, keeper) => startExpress(framework, keeper, settings),
});
const fastifyScenario = (
  name: string,
  rows: Row[],
  settings: FastifySettings,
  meanings?: Record<string, Meaning>,
): Scenario => ({
  name,
  ...(meanings ? { meanings } : {}),
  frameworks: FASTIFY,
  rows,
  start: (framework, keeper) => startFastify(framework, keeper, settings),
});

const SCENARIOS: Scenario[] = [
  expressScenario('default routing', EXPRESS_DEFAULT, {}),
  expressScenario('case-sensitive and strict routing', EXPRESS_STRICT, { caseSensitive: true, strict: true }),
  // The exempt rule '/Mixed-Case' names no route of a case-sensitive router: /mixed-case counts.
  fastifyScenario('default routing', FASTIFY_DEFAULT, {}, { mixedCase: { counts: ['forbidden'] } }),
  fastifyScenario('caseSensitive false, ignoreTrailingSlash, ignoreDuplicateSlashes', FASTIFY_RELAXED, {
    relaxed: true,
  }),
];

let second = 60;
for (const scenario of SCENARIOS) {
  for (const framework of scenario.frameworks) {
    describe(`route conformance: ${framework}, ${scenario.name}`, () => {
      const keeper = createJailkeeper({ jails: JAILS, logger: quietLogger, store: createMemoryStore() });
      const failures: FailureEvent[] = [];
      const pardons: PardonEvent[] = [];
      keeper.on('failure', (f) => failures.push(f));
      keeper.on('pardon', (p) => pardons.push(p));
      const fresh = addresses(second++);
      let app: RunningApp | undefined;
      after(async () => {
        await app?.close();
        await keeper.close();
      });
      for (const r of scenario.rows) {
        it(r.name + (r.wire.headers ? ` ${JSON.stringify(r.wire.headers)}` : ''), async () => {
          app ??= await scenario.start(framework, keeper);
          await runRow(
            {
              keeper,
              failures,
              pardons,
              app,
              meanings: { ...MEANINGS, ...scenario.meanings },
              scopedJails: SCOPED_JAILS,
              fresh,
            },
            framework,
            r,
          );
        });
      }
    });
  }
}

after(() => {
  const figures = [...tally].map(([f, n]) => `${f}: ${n}`).join(', ');
  process.stdout.write(`# route conformance rows: ${figures}\n`);
});
