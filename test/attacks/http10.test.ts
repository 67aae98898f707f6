/**
 * HTTP/1.0: one request per connection, no keep-alive, no Host requirement (issue 12).
 */
import { attackMatrix } from './matrix.js';
import { parallel } from './traffic.js';

attackMatrix('HTTP/1.0', [
  { name: '50 parallel HTTP/1.0 connections', attack: (ports, client) => parallel(ports, client, 50, '1.0') },
]);
