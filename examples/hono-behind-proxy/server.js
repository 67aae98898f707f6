import { start } from './app.js';

const { url } = await start({ port: Number(process.env.PORT ?? 3003) });
console.log(`listening on ${url} as if behind a proxy on 127.0.0.1; try:
  curl -i ${url}/login -d '{}' -H 'X-Forwarded-For: 198.51.100.7'   (three times: 198.51.100.7 is banned)
  curl -i ${url}/      -H 'X-Forwarded-For: 198.51.100.8'           (another client: served)`);
