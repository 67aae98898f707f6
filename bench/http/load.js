// A load generator on raw keep-alive sockets, one request in flight per connection (as wrk and
// autocannon do without pipelining). Each connection binds a loopback address of its own
// (127.0.0.0/8 needs no setup on Linux), so the server sees many clients. It counts statuses per
// client address, so a scenario can check who was refused, and it reconnects a connection the
// server closes (a dropped banned client), counting that as a refusal.
import { connect } from 'node:net';

const CRLF2 = Buffer.from('\r\n\r\n');

/** A request as bytes, built once. */
export function httpRequest(method, path, { body, headers = {} } = {}) {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: keep-alive'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined)
    lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
}

/** Parses one response from the front of `buf`: { status, length } or null when incomplete. */
export function parseResponse(buf) {
  const end = buf.indexOf(CRLF2);
  if (end === -1) return null;
  const head = buf.toString('latin1', 0, end);
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (m) {
    const length = end + 4 + Number(m[1]);
    return buf.length >= length ? { status, length } : null;
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    const last = buf.indexOf('0\r\n\r\n', end + 4);
    return last === -1 ? null : { status, length: last + 5 };
  }
  return { status, length: end + 4 };
}

/**
 * Runs `clients` for `durationMs` against 127.0.0.1:`port`. Each client is
 * `{ address, requests: Buffer[], repeat: boolean }`: it sends its requests in order (again and
 * again when `repeat`), on one connection from `address`. A client that is done is replaced by
 * `next()` when given (fresh attackers). Returns the totals, latency percentiles, statuses per
 * address, and refusals by closed connection.
 */
export function runLoad({ port, clients, durationMs, next }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const deadline = started + durationMs;
    const latencies = [];
    const byAddress = new Map();
    let responses = 0;
    let dropped = 0;
    let errors = 0;
    let active = 0;
    let stopping = false;

    const count = (address, status) => {
      let counts = byAddress.get(address);
      if (counts === undefined) {
        counts = {};
        byAddress.set(address, counts);
      }
      counts[status] = (counts[status] ?? 0) + 1;
    };

    const finish = () => {
      if (active > 0) return;
      const seconds = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
      resolve({
        seconds,
        rps: responses / seconds,
        refusalsPerSecond: (responses + dropped) / seconds,
        responses,
        dropped,
        errors,
        p50: pct(0.5),
        p99: pct(0.99),
        byAddress,
      });
    };

    const start = (client) => {
      if (client === undefined || stopping) return;
      active++;
      let index = 0;
      let sentAt = 0;
      let buf = Buffer.alloc(0);
      let waiting = false;
      let done = false;
      const socket = connect({ port, host: '127.0.0.1', localAddress: client.address });
      socket.setNoDelay(true);
      const send = () => {
        if (performance.now() >= deadline) {
          stopping = true;
          socket.destroy();
          return;
        }
        if (index >= client.requests.length) {
          if (!client.repeat) {
            done = true;
            socket.destroy();
            return;
          }
          index = 0;
        }
        sentAt = performance.now();
        waiting = true;
        socket.write(client.requests[index++]);
      };
      socket.on('connect', send);
      socket.on('data', (chunk) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          const r = parseResponse(buf);
          if (r === null) break;
          buf = buf.subarray(r.length);
          waiting = false;
          responses++;
          latencies.push(performance.now() - sentAt);
          count(client.address, r.status);
          send();
        }
      });
      socket.on('error', () => {
        if (!waiting) errors++;
      });
      socket.on('close', () => {
        active--;
        if (waiting && !stopping) {
          // Closed with a request in flight: the server dropped this client (or closed its
          // connections on a ban). Like a real client, it reconnects and goes on with the rest.
          dropped++;
          count(client.address, 'dropped');
          const rest = client.repeat ? client.requests : client.requests.slice(index);
          if (rest.length > 0) {
            start({ ...client, requests: rest });
            finish();
            return;
          }
          done = true;
        }
        if (done && next && !stopping) start(next());
        finish();
      });
    };

    for (const client of clients) start(client);
    setTimeout(() => {
      stopping = true;
    }, durationMs + 50).unref();
  });
}

/** The i-th loopback address of a block: block 1 gives 127.1.0.1, 127.1.0.2, ... */
export function loopback(block, i) {
  return `127.${block}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}
