/**
 * Abandoned attempts: the client closes its connection after sending, before the answer. The
 * handler still runs; the attempt counts as a failure (nginx's 499), so it cannot buy blind runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '@jailkeeper/core/testing';
import { LOGIN_JAIL } from './fleet.js';
import { attackMatrix } from './matrix.js';
import { abandoned, abandonedInTurn, pipelined, waitingThenAbandoned } from './traffic.js';

attackMatrix('abandoned attempts', [
  {
    name: '50 parallel, each closed 5 ms after sending',
    reachesHandler: false,
    attack: (ports, client) => abandoned(ports, client, 50, 5),
  },
  {
    name: '12 in turn, each closed 5 ms after sending',
    reachesHandler: false,
    attack: (ports, client) => abandonedInTurn(ports, client, 12, 5),
  },
  {
    name: '200 pipelined in one write, closed 5 ms after',
    reachesHandler: false,
    attack: (ports, client) => pipelined(ports, client, 200, 5),
  },
  {
    name: '20 abandoned while waiting for a slot, admitted once the 5 holders get a 400',
    reachesHandler: false,
    attack: (ports, client, fleet) =>
      waitingThenAbandoned(ports, client, LOGIN_JAIL.maxRetry, 20, 30, async () => {
        await until(() => fleet.probe.receivedFrom(client) >= LOGIN_JAIL.maxRetry, { what: 'the holders' });
        // Pacing, not an assertion: one store round trip for the holders to take their slots.
        await sleep(50);
      }),
  },
]);
