// The adapters' clean path rebuilt step by step from the keeper's public API, to find what each
// step costs: configuration `steps-<n>` of app.js runs the first n steps of its framework's list,
// so steps-n minus steps-(n-1) is the cost of step n (inprocess.bench.js --configs steps-1,...).
// The steps are what @jailkeeper/express and @jailkeeper/fastify do for a request that is not
// banned, in their order; the full adapter is the `jailkeeper` configuration.

const kIdentity = Symbol('ablation.identity');
const kRequest = Symbol('ablation.request');

export const EXPRESS_STEPS = [
  'resolve: keeper.resolve(peer, headers, req), the identity object',
  'judge: keeper.settling(identity) and keeper.check(identity)',
  'track: keeper.trackConnection(req.socket, identity)',
  'locals: res.locals[kIdentity] = identity',
  "listen: res.on('close', onClose) (onClose reads res.locals and keeper.watchesStatus)",
];

export const FASTIFY_STEPS = [
  'resolve: keeper.resolve(peer, headers, request), the identity object',
  'judge: keeper.settling(identity) and keeper.check(identity)',
  'track: keeper.trackConnection(request.raw.socket, identity)',
  'decorate: request[kIdentity] = identity (a declared request decorator)',
  'raw: reply.raw[kRequest] = request (a property added to the ServerResponse)',
  "listen: reply.raw.on('close', onClose) (onClose reads the request and keeper.watchesStatus)",
];

/** Express middleware doing the first `n` steps. */
export function expressSteps(keeper, n) {
  function onClose() {
    const identity = this.locals[kIdentity];
    if (identity === undefined) return;
    keeper.watchesStatus(this.statusCode);
  }
  return function ablation(req, res, next) {
    const identity = keeper.resolve(req.socket.remoteAddress, req.headers, req);
    if (n >= 2 && keeper.settling(identity) === undefined) keeper.check(identity);
    if (n >= 3) keeper.trackConnection(req.socket, identity);
    if (n >= 4) res.locals[kIdentity] = identity;
    if (n >= 5) res.on('close', onClose);
    next();
  };
}

/** Registers a Fastify onRequest hook doing the first `n` steps. */
export function fastifySteps(fastify, keeper, n) {
  if (n >= 4) fastify.decorateRequest(kIdentity, null);
  function onClose() {
    const request = this[kRequest];
    if (request === undefined) return;
    if (request[kIdentity] === null) return;
    keeper.watchesStatus(this.statusCode);
  }
  fastify.addHook('onRequest', (request, reply, done) => {
    const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
    if (n >= 2 && keeper.settling(identity) === undefined) keeper.check(identity);
    if (n >= 3) keeper.trackConnection(request.raw.socket, identity);
    if (n >= 4) request[kIdentity] = identity;
    if (n >= 5) reply.raw[kRequest] = request;
    if (n >= 6) reply.raw.on('close', onClose);
    done();
  });
}

// Alternatives to a step, for the proposals in bench/results/adapter-costs.md: configuration
// `alt-<name>` of app.js. Each does what the adapter does for the request kinds it is measured on.
const REFUSAL_BODY = JSON.stringify({ error: 'Forbidden' });
const REFUSAL_TYPE = 'application/json; charset=utf-8';
const REFUSAL_HEADERS = {
  'content-type': REFUSAL_TYPE,
  'content-length': String(Buffer.byteLength(REFUSAL_BODY)),
};

export const ALTERNATIVES = {
  // Fastify, banned: the refusal as the adapter sends it (reply.code, a header at a time, send).
  'refuse-reply': 'Fastify: refuse with reply.code().header()...send(body), as the adapter does',
  // Fastify, banned: the same bytes written on the raw response after reply.hijack().
  'refuse-raw': 'Fastify: refuse with reply.hijack() and raw.writeHead(status, headers).end(body)',
  // Fastify, banned: refused in the server's 'request' listener, before Fastify builds its request
  // and reply or routes (what a serverFactory wrapper would do); the rest goes on to Fastify.
  'refuse-below': "Fastify: refuse in a wrapper around Fastify's 'request' handler (serverFactory)",
  // Fastify, clean: the response counted by an onResponse hook, no raw property or listener.
  'count-onresponse': 'Fastify: steps 1-4, then an onResponse hook instead of the raw listener',
  // Express, clean: the listener's cheapest test first (the status), before res.locals.
  'close-status-first': 'Express: steps 1-5 with onClose testing keeper.watchesStatus() first',
};

/** Installs the alternative `name` on a Fastify instance (or returns Express middleware). */
export function alternative(name, framework, appOrNull, keeper) {
  if (name === 'close-status-first') {
    if (framework !== 'express') throw new Error(`${name} is an Express alternative`);
    function onClose() {
      if (!keeper.watchesStatus(this.statusCode)) return;
      const identity = this.locals[kIdentity];
      if (identity === undefined) return;
    }
    return function ablation(req, res, next) {
      const identity = keeper.resolve(req.socket.remoteAddress, req.headers, req);
      if (keeper.settling(identity) === undefined) keeper.check(identity);
      keeper.trackConnection(req.socket, identity);
      res.locals[kIdentity] = identity;
      res.on('close', onClose);
      next();
    };
  }
  if (framework !== 'fastify') throw new Error(`${name} is a Fastify alternative`);
  const fastify = appOrNull;
  if (name === 'count-onresponse') {
    fastify.decorateRequest(kIdentity, null);
    fastify.addHook('onRequest', (request, _reply, done) => {
      const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
      if (keeper.settling(identity) === undefined) keeper.check(identity);
      keeper.trackConnection(request.raw.socket, identity);
      request[kIdentity] = identity;
      done();
    });
    fastify.addHook('onResponse', (request, reply, done) => {
      if (request[kIdentity] !== null) keeper.watchesStatus(reply.statusCode);
      done();
    });
    return undefined;
  }
  if (name === 'refuse-below') {
    // after ready(): the server's handler is Fastify's; put the wrapper in its place
    fastify.addHook('onReady', (done) => {
      const server = fastify.server;
      const [handler] = server.listeners('request');
      server.removeAllListeners('request');
      server.on('request', (req, res) => {
        const identity = keeper.resolve(req.socket.remoteAddress, req.headers, req);
        const verdict = identity === undefined ? undefined : keeper.check(identity);
        if (verdict === undefined || !verdict.banned) {
          handler(req, res);
          return;
        }
        const seconds = String(Math.max(1, Math.ceil((verdict.untilMs - keeper.clock.now()) / 1000)));
        res.writeHead(403, { ...REFUSAL_HEADERS, 'retry-after': seconds });
        res.end(REFUSAL_BODY);
      });
      done();
    });
    return undefined;
  }
  const raw = name === 'refuse-raw';
  fastify.addHook('onRequest', (request, reply, done) => {
    const identity = keeper.resolve(request.raw.socket.remoteAddress, request.headers, request);
    const verdict = keeper.check(identity);
    if (!verdict.banned) {
      done();
      return;
    }
    const seconds = String(Math.max(1, Math.ceil((verdict.untilMs - keeper.clock.now()) / 1000)));
    if (raw) {
      reply.hijack();
      reply.raw.writeHead(403, { ...REFUSAL_HEADERS, 'retry-after': seconds });
      reply.raw.end(REFUSAL_BODY);
      return;
    }
    reply.code(403);
    reply.header('content-type', REFUSAL_TYPE);
    reply.header('retry-after', seconds);
    reply.send(REFUSAL_BODY);
  });
  return undefined;
}
