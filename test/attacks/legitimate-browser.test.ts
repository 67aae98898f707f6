/**
 * The other side of admission: a legitimate browser loads 20 assets at once, then logs in with the
 * right password, while an attacker floods the same login from another address. The browser is
 * never held and never refused: its assets take no slot anywhere (an app-wide jail is configured
 * too), its login takes one slot at its first try, and reaches the handler at once.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { NO_REDIS } from '../needs.js';
import {
  CHECK_MS,
  deploy,
  type Fleet,
  FRAMEWORKS,
  LOGIN_JAIL,
  MEMORY_REPEAT,
  PASSWORD,
  REDIS_REPEAT,
  STORES,
} from './fleet.js';
import { freshClient, parallel } from './traffic.js';

const ASSETS = 20;

function get(port: number, path: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

function login(port: number, agent: Agent, password: string): Promise<number> {
  const body = JSON.stringify({ user: 'admin', password });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/login',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('a legitimate browser beside an attacker', () => {
  for (const framework of FRAMEWORKS) {
    for (const store of STORES) {
      describe(`${framework.name}, ${store.name}`, { skip: (store.redis && NO_REDIS) || false }, () => {
        let fleet: Fleet;
        before(async () => {
          fleet = await deploy(framework, store, {
            jails: { login: LOGIN_JAIL, forbidden: { statuses: [403], maxRetry: 2 } },
          });
        });
        after(() => fleet.close());
        const repeat = store.redis ? REDIS_REPEAT : MEMORY_REPEAT;

        it(`${ASSETS} parallel assets then a login: never held, never refused, ${repeat} times`, {}, async (t) => {
          const toHandler: number[] = [];
          const total: number[] = [];
          for (let run = 0; run < repeat; run++) {
            const browser = freshClient();
            const attacker = freshClient();
            const ports = fleet.instances.map((i) => i.port);
            // Each browser sticks to one instance, as behind a load balancer with keep-alive.
            const port = ports[run % ports.length] as number;
            const agent = new Agent({ keepAlive: true, maxSockets: ASSETS, localAddress: browser } as never);
            try {
              const flood = parallel(ports, attacker, 100);
              const assets = await Promise.all(
                Array.from({ length: ASSETS }, (_, i) => get(port, `/assets/${i}.js`, agent)),
              );
              const sent = performance.now();
              const status = await login(port, agent, PASSWORD);
              const answered = performance.now();
              await flood;
              await fleet.settle();

              assert.deepEqual(assets, Array(ASSETS).fill(200), `run ${run + 1}: every asset served`);
              assert.equal(fleet.probe.hitsOf(browser, 'assets'), ASSETS);
              assert.equal(status, 200, `run ${run + 1}: the login answered ${status}`);
              assert.equal(fleet.probe.runsOf(browser), 1);
              // Held = a reservation not admitted at once. The browser made exactly one: its login.
              assert.deepEqual(
                fleet.probe.reservations.get(browser),
                [true],
                `run ${run + 1}: the browser's reservations`,
              );
              assert.ok(fleet.probe.runsOf(attacker) <= LOGIN_JAIL.maxRetry, 'the attacker was held');
              toHandler.push((fleet.probe.enteredAt.get(browser) as number) - sent);
              total.push(answered - sent);
            } finally {
              agent.destroy();
            }
          }
          const worst = (list: number[]) => Math.max(...list).toFixed(1);
          const line = `${framework.name}, ${store.name}: login sent → handler entered: worst ${worst(toHandler)} ms; sent → answered: worst ${worst(total)} ms (the check takes ${CHECK_MS} ms; its one reservation admitted at once)`;
          t.diagnostic(line);
          console.log(`# ${line}`);
        });
      });
    }
  }
});
