// Express 4 and Fastify 4 are installed under aliases for the compatibility runs; their API shape
// is what the harness uses of the current major.
declare module 'express4' {
  import express from 'express';
  export default express;
}
