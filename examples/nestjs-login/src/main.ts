import { start } from './app.js';

const { url } = await start({ port: Number(process.env.PORT ?? 3004) });
console.log(`listening on ${url}; try:
  curl -i ${url}/auth/login -H 'content-type: application/json' -d '{"user":"alice","password":"guess"}'   (three times: banned)
  curl -i ${url}/auth/session   (401 by design, any number of times: never banned)`);
