import { start } from './app.js';

const { url } = await start({ port: Number(process.env.PORT ?? 3001) });
console.log(
  `listening on ${url}; curl ${url}/ws any number of times (never banned), then ${url}/admin twice (banned)`,
);
