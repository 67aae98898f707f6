// One configuration of the in-process measure (inprocess.bench.js and profile.js run it; by hand,
//   node bench/http/inprocess-child.js fastify jailkeeper failure 200000
// runs that many requests, prints the CPU time per request, and exits).
// node inprocess-child.js <express|fastify> <config> <clean|banned|failure> [requests]
//
// The app of app.js gets its connections in memory: MockSocket is a net.Socket (so that Node's
// HTTP server and jailkeeper treat it as a real one) whose bytes go to and from this process, not
// the kernel. Node's own HTTP parser, keep-alive handling and response objects all run as they do
// for a real connection; no system call, no scheduler between request and response. 50
// connections, each from its own 127.x address (the banned kind: 127.0.0.1), one request in
// flight on each, as the HTTP load does.
//
// Commands on stdin, one per line: `run <n>` runs n requests and prints `done <json>` with the
// CPU time (process.cpuUsage: all threads) and wall time they took; `profile-start` and
// `profile-stop <file>` profile what runs in between (prints "profiled <json>"); `exit` leaves.
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { buildApp, refuses } from './app.js';
import { loopback, parseResponse } from './load.js';
import { startProfile, stopProfile } from './profiler.js';
import { GET, LOGIN } from './scenarios.js';

const [framework, config, kind, once] = process.argv.slice(2);
const SCENARIO = { clean: 'clean', banned: 'banned', failure: 'failures' };
if (!(kind in SCENARIO)) throw new Error(`kind: one of ${Object.keys(SCENARIO).join(', ')}`);
const REQUEST = kind === 'failure' ? LOGIN : GET;
const EXPECTED = { clean: 200, failure: 401, banned: refuses(config) ? 403 : 200 }[kind];
const CONNECTIONS = 50;

class MockSocket extends Socket {
  #address;
  #onData;
  constructor(address, onData) {
    super();
    this.#address = address;
    this.#onData = onData;
  }
  get remoteAddress() {
    return this.#address;
  }
  get remotePort() {
    return 40000;
  }
  get remoteFamily() {
    return 'IPv4';
  }
  _read() {}
  // A net.Socket does not decode strings: Node's HTTP server writes its head as a latin1 string.
  _write(chunk, encoding, callback) {
    this.#onData(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
    callback();
  }
  _writev(chunks, callback) {
    for (const { chunk, encoding } of chunks) {
      this.#onData(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
    }
    callback();
  }
  _final(callback) {
    callback();
  }
}

const app = await buildApp(framework, config, SCENARIO[kind]);

/** What a connection does after a response: the running batch decides whether it sends again. */
let onResponse = () => false;

// A response is read by the client, and its next request arrives, in a later turn of the event
// loop, as over a network: the connections that may send again are gathered and sent together in
// one setImmediate, as one epoll wake-up hands a server every readable socket at once. Sending
// from inside the write callback instead would run the next request inside the previous
// response's end(), an order no real connection has.
let ready = [];
const sendReady = () => {
  const sockets = ready;
  ready = [];
  for (const socket of sockets) socket.push(REQUEST);
};

/** A connection from its own address that sends REQUEST again whenever onResponse() says so. */
function connection(i) {
  const address = kind === 'banned' ? '127.0.0.1' : loopback(1, i);
  let buf = Buffer.alloc(0);
  const socket = new MockSocket(address, (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const r = parseResponse(buf);
      if (r === null) return;
      buf = buf.subarray(r.length);
      if (r.status !== EXPECTED) {
        console.error(`${framework} ${config} ${kind}: status ${r.status}, expected ${EXPECTED}`);
        process.exit(1);
      }
      if (onResponse()) {
        if (ready.length === 0) setImmediate(sendReady);
        ready.push(socket);
      }
    }
  });
  app.server.emit('connection', socket);
  return socket;
}

const sockets = new Array(CONNECTIONS);
/** Runs n requests over the connections; a connection the server closed (idle) is opened again. */
function run(n) {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    onResponse = () => {
      if (++received === n) resolve();
      if (sent === n) return false;
      sent++;
      return true;
    };
    for (let i = 0; i < CONNECTIONS && sent < n; i++) {
      if (sockets[i] === undefined || sockets[i].destroyed) sockets[i] = connection(i);
      sent++;
      sockets[i].push(REQUEST);
    }
  });
}

async function batch(n) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(n);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { n, cpuUs: cpu.user + cpu.system, userUs: cpu.user, systemUs: cpu.system, wallNs };
}

if (once !== undefined) {
  // By hand: one long batch, then exit normally (so that --cpu-prof, if given, writes).
  const r = await batch(Number(once));
  console.log(`${framework} ${config} ${kind}: ${(r.cpuUs / r.n).toFixed(2)} µs CPU/request over ${r.n}`);
  process.exit(0);
}
createInterface({ input: process.stdin }).on('line', async (line) => {
  const [command, arg] = line.split(' ');
  if (command === 'run') process.stdout.write(`done ${JSON.stringify(await batch(Number(arg)))}\n`);
  else if (command === 'profile-start') {
    await startProfile();
    process.stdout.write('profiling true\n');
  } else if (command === 'profile-stop') {
    await stopProfile(arg);
    process.stdout.write(`profiled ${JSON.stringify(arg)}\n`);
  } else if (command === 'exit') process.exit(0);
});
console.log('ready');
