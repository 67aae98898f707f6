import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { createJailkeeper, type Duration, type Jailkeeper } from '@jailkeeper/core';
import { until } from '@jailkeeper/core/testing';
import { createWebhookNotifier, escapeForChat } from '../src/notifier.js';

interface Received {
  text: string;
  digest: boolean;
  events: Array<{ type: string; client: string; jail: string; lastRequest?: string }>;
  notListed: number;
}

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

/** A webhook endpoint that answers with the statuses given, then 200. */
async function endpoint(statuses: number[] = []) {
  const received: Received[] = [];
  let attempts = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts++;
      const status = statuses.shift() ?? 200;
      if (status === 200) received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received);
      res.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    attempts: () => attempts,
  };
}

function keeper(): Jailkeeper {
  const k = createJailkeeper({ jails: { login: { statuses: [401], maxRetry: 2, banTime: '1h' } } });
  cleanup.push(() => k.close());
  return k;
}

async function failTwice(k: Jailkeeper, ip: string, path = '/login') {
  for (let i = 0; i < 2; i++) await k.observe({ client: ip, method: 'POST', path, route: path, status: 401 });
}

describe('webhook notifier', () => {
  it('posts one message per ban with a Slack text and the events, and one for the unban', async () => {
    const hook = await endpoint();
    const k = keeper();
    const n = createWebhookNotifier(k, { url: hook.url, batchWindow: 20 });
    cleanup.push(() => n.close());
    await failTwice(k, '203.0.113.4');
    await until(() => hook.received.length === 1, { within: 3000 });
    const [msg] = hook.received as [Received];
    assert.equal(msg.digest, false);
    assert.match(msg.text, /^jailkeeper: banned `203\.0\.113\.4` in `login` for 1h/);
    assert.match(msg.text, /last request `POST \/login → 401`/);
    assert.equal(msg.events[0]?.type, 'ban');
    await k.unban('203.0.113.4');
    await until(() => hook.received.length === 2, { within: 3000 });
    assert.match(hook.received[1]?.text ?? '', /unbanned `203\.0\.113\.4` in `login` \(manual\)/);
  });

  it('turns a ban storm into one digest that counts every ban', async () => {
    const hook = await endpoint();
    const k = keeper();
    const n = createWebhookNotifier(k, { url: hook.url, batchWindow: 200, digestThreshold: 5 });
    cleanup.push(() => n.close());
    for (let i = 1; i <= 60; i++) await failTwice(k, `198.51.100.${i}`);
    await until(() => hook.received.length >= 1, { within: 3000 });
    await n.flush(); // sends whatever the storm left queued: nothing, when it was one digest
    assert.equal(hook.received.length, 1, 'one message for the storm');
    const digest = hook.received[0] as Received;
    assert.equal(digest.digest, true);
    assert.match(digest.text, /^jailkeeper digest: 60 bans in `login`/);
    assert.match(digest.text, /…and 40 more/);
    assert.equal(digest.events.length, 60);
  });

  it('retries a failing endpoint with backoff and delivers', async () => {
    const hook = await endpoint([500, 503, 429]);
    const k = keeper();
    const n = createWebhookNotifier(k, { url: hook.url, batchWindow: 0, retryDelay: 10 });
    cleanup.push(() => n.close());
    await failTwice(k, '203.0.113.8');
    // the endpoint has the body before the notifier has read the answer: wait for the notifier
    await until(() => n.stats.delivered === 1, { within: 3000 });
    assert.equal(hook.received.length, 1);
    assert.equal(hook.attempts(), 4);
  });

  it('gives up after maxAttempts, warns once, and goes on with later messages', async () => {
    const hook = await endpoint([500, 500]);
    const k = keeper();
    const warnings: string[] = [];
    k.on('warning', (w) => warnings.push(w.code));
    const n = createWebhookNotifier(k, { url: hook.url, batchWindow: 0, retryDelay: 5, maxAttempts: 2 });
    cleanup.push(() => n.close());
    await failTwice(k, '203.0.113.9');
    await until(() => n.stats.failed === 1, { within: 3000 });
    assert.deepEqual(warnings, ['JK_WRN_NOTIFY_FAILED']);
    await failTwice(k, '203.0.113.10');
    await until(() => hook.received.length === 1, { within: 3000 });
    assert.equal(hook.received[0]?.events[0]?.client, '203.0.113.10');
  });

  it('does not hold up the request path: observe() resolves while the endpoint hangs', async () => {
    const server = createServer(() => {}); // never answers
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => {
      server.closeAllConnections();
      server.close();
    });
    const k = keeper();
    const n = createWebhookNotifier(k, {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
      batchWindow: 0,
      timeout: 1000,
      maxAttempts: 1,
    });
    await failTwice(k, '203.0.113.11');
    // The ban is in force while its message is still waiting on the endpoint (up to its 1 s timeout).
    assert.ok(k.check('203.0.113.11').banned);
    assert.deepEqual(
      n.stats,
      { delivered: 0, failed: 0, overflow: 0 },
      'the ban did not wait for the webhook',
    );
    await n.close();
    assert.equal(n.stats.failed, 1);
  });

  it('escapes attacker-chosen text: no mentions, links, markup or new lines reach the chat', async () => {
    const hook = await endpoint();
    const k = keeper();
    const n = createWebhookNotifier(k, { url: hook.url, batchWindow: 0 });
    cleanup.push(() => n.close());
    const evil = '/x<!channel>`*bold*`\n@here<https://evil.example|click>&amp;';
    await failTwice(k, '203.0.113.12', evil);
    await until(() => hook.received.length === 1, { within: 3000 });
    const text = hook.received[0]?.text ?? '';
    assert.ok(!text.includes('<!channel>'), text);
    assert.ok(!text.includes('<https://'), text);
    assert.ok(!text.includes('\n'), 'no line break from the path');
    assert.match(text, /&lt;!channel&gt;/);
    assert.equal(
      text.split('`').length % 2,
      1,
      'backticks stay balanced: the path cannot close its code span',
    );
    // the events array carries the raw text as JSON data
    assert.match(hook.received[0]?.events[0]?.lastRequest ?? '', /<!channel>/);
    assert.equal(escapeForChat('a&b'), '`a&amp;b`');
  });

  it('notifies only bans made here by default, so a fleet sends each ban once', async () => {
    const hook = await endpoint();
    const k = keeper();
    const n = createWebhookNotifier(k, { url: hook.url, batchWindow: 0 });
    cleanup.push(() => n.close());
    k.emit('ban', {
      jail: 'login',
      client: '203.0.113.13',
      startMs: 0,
      endMs: 1,
      banCount: 1,
      reason: 'r',
      manual: false,
      durationMs: 1,
      scope: 'app',
      origin: 'remote',
    });
    await failTwice(k, '203.0.113.14');
    await until(() => hook.received.length === 1, { within: 3000 });
    await n.flush();
    assert.deepEqual(
      hook.received.flatMap((m) => m.events.map((e) => e.client)),
      ['203.0.113.14'],
    );
  });

  it('validates its options at setup', () => {
    const k = keeper();
    assert.throws(() => createWebhookNotifier(k, { url: 'ftp://x' }), /url must be an http\(s\) URL/);
    assert.throws(
      () => createWebhookNotifier(k, { url: 'http://x', events: ['nope' as 'ban'] }),
      /events must be/,
    );
    assert.throws(
      () => createWebhookNotifier(k, { url: 'http://x', batchWindow: 'soon' as Duration }),
      /batchWindow/,
    );
  });
});
