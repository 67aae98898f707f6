/**
 * Pipelining: HTTP/1.1 requests written back to back in one TCP write, before any answer (issue 12).
 */
import { attackMatrix } from './matrix.js';
import { pipelined } from './traffic.js';

attackMatrix('pipelining', [
  {
    name: '200 pipelined in one write (to each instance)',
    attack: (ports, client) => pipelined(ports, client, 200),
  },
]);
