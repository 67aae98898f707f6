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
