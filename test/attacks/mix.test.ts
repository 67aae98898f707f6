/**
 * A mix of every transport at once from one client: parallel connections, a pipelined write to
 * each instance, HTTP/1.0 and abandoned attempts.
 */
import { attackMatrix } from './matrix.js';
import { type AttackResult, abandoned, parallel, pipelined } from './traffic.js';

attackMatrix('a mix of transports', [
  {
    name: '30 parallel + 30 pipelined + 20 HTTP/1.0 + 20 abandoned',
    async attack(ports, client): Promise<AttackResult> {
      const parts = await Promise.all([
        parallel(ports, client, 30),
        pipelined(ports, client, 30),
        parallel(ports, client, 20, '1.0'),
        abandoned(ports, client, 20, 5),
      ]);
      return {
        sent: parts.reduce((n, p) => n + p.sent, 0),
        statuses: parts.flatMap((p) => p.statuses),
        timedOut: parts.reduce((n, p) => n + p.timedOut, 0),
      };
    },
  },
]);
