// Express 4 and Fastify 4 are installed under aliases for the compatibility runs; their API shape
// is what the harness uses of the current major.
declare module 'express4' {
  import express from 'express';
  export default express;
}

// The express-login example, started by the issue-15 regression test as the README runs it.
declare module '@jailkeeper/example-express-login/app.js' {
  import type { Jailkeeper } from '@jailkeeper/core';
  export function start(options?: {
    port?: number;
    host?: string;
    admin?: string;
    adminToken?: string;
  }): Promise<{ keeper: Jailkeeper; url: string; close(): Promise<void> }>;
}
