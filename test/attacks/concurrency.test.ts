/**
 * Concurrency: guesses on many parallel connections, all sent before any answer (issue 12).
 */
import { attackMatrix } from './matrix.js';
import { parallel } from './traffic.js';

attackMatrix('parallel connections', [
  { name: '100 parallel connections', attack: (ports, client) => parallel(ports, client, 100) },
]);
