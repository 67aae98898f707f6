// The clients of each HTTP scenario (for load.js), and what each scenario checks afterwards.
// Clean clients come from 127.1.x.y, attackers from 127.2.0.0 onwards, every attacker on an
// address never used before in the run (a ban lasts longer than the run).
import { MAX_RETRY } from './app.js';
import { httpRequest, loopback } from './load.js';

export const CONNECTIONS = 50;
/** The login flood: attackers, parallel guesses (connections) per attacker, clean clients. */
export const FLOOD = { attackers: 10, parallel: 100, clean: 50 };

export const GET = httpRequest('GET', '/');
export const LOGIN = httpRequest('POST', '/login', { body: '{"user":"alice","password":"guess"}' });

let attackerSerial = 0;
const nextAttackerAddress = () => {
  const n = attackerSerial++;
  return loopback(2 + Math.floor(n / 60000), n % 60000);
};
const isClean = (address) => address.startsWith('127.1.');

/**
 * The load of one run of `scenario`: { clients, next?, attackers? } for runLoad(), where
 * `attackers` lists the attacker addresses of this run (flood).
 */
export function clientsFor(scenario) {
  const clean = (n) =>
    Array.from({ length: n }, (_, i) => ({ address: loopback(1, i), requests: [GET], repeat: true }));
  if (scenario === 'banned') {
    // the server banned 127.0.0.1 at start; bare serves it
    return {
      clients: Array.from({ length: CONNECTIONS }, () => ({
        address: '127.0.0.1',
        requests: [GET],
        repeat: true,
      })),
    };
  }
  if (scenario === 'failures') {
    return {
      clients: Array.from({ length: CONNECTIONS }, (_, i) => ({
        address: loopback(1, i),
        requests: [LOGIN],
        repeat: true,
      })),
    };
  }
  if (scenario === 'mixed') {
    // 90% clean clients; 10% attackers, each failing 5 × maxRetry times, then a fresh attacker
    const attack = Array.from({ length: 5 * MAX_RETRY }, () => LOGIN);
    const nextAttacker = () => ({ address: nextAttackerAddress(), requests: attack, repeat: false });
    const clients = Array.from({ length: CONNECTIONS }, (_, i) =>
      i % 10 === 9 ? nextAttacker() : { address: loopback(1, i), requests: [GET], repeat: true },
    );
    return { clients, next: nextAttacker };
  }
  if (scenario === 'flood') {
    // Each attacker guesses on `parallel` connections at once, for the whole run; a refused
    // connection (closed on the ban) reconnects and goes on.
    const attackers = Array.from({ length: FLOOD.attackers }, nextAttackerAddress);
    const clients = [...clean(FLOOD.clean)];
    for (const address of attackers) {
      for (let i = 0; i < FLOOD.parallel; i++) clients.push({ address, requests: [LOGIN], repeat: true });
    }
    return { clients, attackers };
  }
  return { clients: clean(CONNECTIONS) };
}

/** Mixed traffic: were the attackers stopped at exactly maxRetry, and was any clean client refused? */
export function verifyMixed(byAddress) {
  let attackers = 0;
  let exact = 0;
  let cleanRefused = 0;
  for (const [address, counts] of byAddress) {
    if (isClean(address)) {
      for (const [status, n] of Object.entries(counts)) if (status !== '200') cleanRefused += n;
      continue;
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    if (total < 5 * MAX_RETRY) continue; // cut off by the end of the run
    attackers++;
    if ((counts[401] ?? 0) === MAX_RETRY) exact++;
  }
  return { attackers, exact, cleanRefused };
}

/**
 * The login flood: clean responses (200s) and refusals, and the login handler's runs per attacker
 * as the server counted them (`runs`, from the server: the ground truth, not the 401s seen).
 */
export function verifyFlood(byAddress, attackers, runs) {
  let cleanOk = 0;
  let cleanRefused = 0;
  for (const [address, counts] of byAddress) {
    if (!isClean(address)) continue;
    for (const [status, n] of Object.entries(counts)) {
      if (status === '200') cleanOk += n;
      else cleanRefused += n;
    }
  }
  return { cleanOk, cleanRefused, handlerRuns: attackers.map((a) => runs[a] ?? 0) };
}
