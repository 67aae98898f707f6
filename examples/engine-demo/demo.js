// The engine on its own, no server: what the Express and Fastify adapters feed it, by hand.
// Run from the repository root: npx --yes pnpm@10.34.9 demo
import { createJailkeeper } from '@jailkeeper/core';
import { createManualClock, formatDuration } from '@jailkeeper/core/operator';

const clock = createManualClock(Date.UTC(2026, 10, 22, 9, 0, 0));
const keeper = createJailkeeper({
  clock,
  jails: {
    // Five failed logins within 10 minutes: banned for an hour. A client that logged in
    // successfully gets 20 tries instead of 5, never immunity.
    login: {
      statuses: [401],
      paths: ['/login'],
      maxRetry: 5,
      findTime: '10m',
      banTime: '1h',
      pardon: { statuses: [200], for: '30d' },
    },
    // The nginx-forbidden incident: 403 counts, but /ws answers 403 to browsers by design.
    forbidden: { statuses: [403], maxRetry: 2, exempt: ['/ws', '/healthz'] },
  },
  ignoreIp: ['127.0.0.0/8'],
});

const time = () => new Date(clock.now()).toISOString().slice(11, 19);
keeper.on('ban', (b) =>
  console.log(`  ${time()}  BAN     ${b.client} in "${b.jail}" for ${formatDuration(b.durationMs)}`),
);
keeper.on('pardon', (p) =>
  console.log(`  ${time()}  PARDON  ${p.ip} may now fail ${p.maxRetry} times in "${p.jail}"`),
);

async function request(who, client, method, path, status) {
  const verdict = keeper.check(client);
  if (verdict.banned) {
    const left = formatDuration(verdict.untilMs - clock.now());
    console.log(`  ${time()}  ${who.padEnd(9)} ${method} ${path} -> refused (403), banned for ${left} more`);
    clock.advance(20_000);
    return;
  }
  const result = await keeper.observe({ client, method, route: path, path, status });
  const outcome = result.jails.map(
    (j) => `${j.jail}: ${j.action}${j.count ? ` ${j.count}/${j.maxRetry}` : ''}`,
  );
  console.log(
    `  ${time()}  ${who.padEnd(9)} ${method} ${path} -> ${status}${outcome.length ? `   [${outcome.join(', ')}]` : ''}`,
  );
  clock.advance(20_000);
}

console.log('\njailkeeper engine demo: three clients, one in-memory jail engine.\n');
console.log('1. Alice opens the page: her browser retries the /ws handshake, which answers 403 by design.');
for (let i = 0; i < 4; i++) await request('alice', '203.0.113.10', 'GET', '/ws', 403);
console.log('   /ws is exempt: Alice is not banned (fail2ban banned her after two).\n');

console.log('2. Alice mistypes her password twice, then logs in.');
await request('alice', '203.0.113.10', 'POST', '/login', 401);
await request('alice', '203.0.113.10', 'POST', '/login', 401);
await request('alice', '203.0.113.10', 'POST', '/login', 200);

console.log('\n3. Mallory guesses passwords from 198.51.100.66 (IPv4-mapped on a dual-stack socket).');
for (let i = 0; i < 7; i++) await request('mallory', '::ffff:198.51.100.66', 'POST', '/login', 401);

console.log(
  '\n4. The admin on 127.0.0.1 tests the login page with wrong passwords: ignoreIp, never counted.',
);
for (let i = 0; i < 6; i++) await request('admin', '127.0.0.1', 'POST', '/login', 401);

console.log('\n5. An hour later Mallory is free again; Alice never noticed anything.');
clock.advance(60 * 60_000);
await keeper.sweep();
await request('mallory', '198.51.100.66', 'GET', '/', 200);
await request('alice', '203.0.113.10', 'GET', '/', 200);

const status = await keeper.status();
console.log('\nStatus (like fail2ban-client status):');
for (const [jail, s] of Object.entries(status.jails)) {
  console.log(
    `  ${jail.padEnd(10)} failed now ${s.currentlyFailed}, total ${s.totalFailed}; banned now ${s.currentlyBanned}, total ${s.totalBanned}; refused ${s.blocked}`,
  );
}
await keeper.close();
console.log('\nNext: the same engine in Express or Fastify; see packages/express and packages/fastify.\n');
