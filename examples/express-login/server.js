import { start } from './app.js';

const { url, keeper } = await start({ port: Number(process.env.PORT ?? 3000) });
keeper.on('ban', (b) =>
  console.log(`banned ${b.client} in ${b.jail} until ${new Date(b.endMs).toISOString()}`),
);
console.log(`listening on ${url}; try:
  curl -i -X POST ${url}/login -H 'content-type: application/json' -d '{"user":"alice","password":"nope"}'
(run it six times from another address than the admin's; the sixth answer is 403 with Retry-After)`);
