/**
 * Express 4 keeps only the RegExp path-to-regexp 0.1 built from each pattern: the pattern is read
 * back from it. Each row declares a layer on a real Express 4 router and reads its pattern back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import express4 from 'express4';
import { type Layer, patternsOf } from '../src/route-identity.js';

type Declare = (router: ReturnType<typeof express4.Router>) => void;
const noop = () => undefined;

/** [what, declare, options of the router, patterns read back (undefined: a RegExp of the app's own)]. */
const ROWS: Array<[string, Declare, { strict?: boolean; caseSensitive?: boolean }, string[] | undefined]> = [
  ['a mount', (r) => r.use('/api', noop), {}, ['/api']],
  ['a strict mount', (r) => r.use('/api', noop), { strict: true }, ['/api']],
  ['a parameter mount', (r) => r.use('/t/:tenant', noop), {}, ['/t/:tenant']],
  ['a mount of an array', (r) => r.use(['/a', '/b/:x'], noop), {}, ['/a', '/b/:x']],
  ['a route', (r) => r.get('/users/:id/password', noop), {}, ['/users/:id/password']],
  ['an array route', (r) => r.post(['/signin', '/log-in'], noop), {}, ['/signin', '/log-in']],
  ['a strict route', (r) => r.get('/login', noop), { strict: true }, ['/login']],
  ['an optional parameter', (r) => r.use('/opt/:x?', noop), {}, ['/opt/:x?']],
  ['a parameter with its own expression', (r) => r.use('/u/:id(\\d+)', noop), {}, ['/u/:id']],
  ['two parameters in a segment', (r) => r.use('/range/:from-:to', noop), {}, ['/range/:from-:to']],
  ['a format parameter', (r) => r.use('/file.:ext', noop), {}, ['/file.:ext']],
  ['a wildcard', (r) => r.use('/files/*', noop), {}, ['/files/*']],
  ['a dotted path', (r) => r.use('/a.b', noop), {}, ['/a.b']],
  ['a RegExp of the app', (r) => r.use(/\/rx-\d+/, noop), {}, undefined],
  ['an anchored RegExp with a class', (r) => r.use(/^\/[ab]c$/, noop), {}, undefined],
];

describe('Express 4 patterns read back from path-to-regexp 0.1', () => {
  for (const [what, declare, options, expected] of ROWS) {
    it(`${what}: ${expected === undefined ? 'no pattern' : expected.join(', ')}`, () => {
      const router = express4.Router(options);
      declare(router);
      // Routes keep route.path too: read every layer from its RegExp alone, as mounts are.
      const { route: _route, ...bare } = router.stack[0] as unknown as Layer;
      assert.deepEqual(patternsOf(bare), expected);
    });
  }
});
