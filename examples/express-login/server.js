import { start } from './app.js';

const { url, keeper } = await start({
  port: Number(process.env.PORT ?? 3000),
  adminToken: process.env.JAILKEEPER_TOKEN,
});
keeper.on('ban', (b) =>
  console.log(`banned ${b.client} in ${b.jail} until ${new Date(b.endMs).toISOString()}`),
);
console.log(`listening on ${url}; try:
  curl -i -X POST ${url}/login -H 'content-type: application/json' -d '{"user":"alice","password":"nope"}'
(run it six times from another address than the admin's; the sixth answer is 403 with Retry-After)`);
if (process.env.JAILKEEPER_TOKEN) {
  console.log(`admin API: jailkeeper bans --url ${url}/_jailkeeper (token from JAILKEEPER_TOKEN)`);
  console.log(`console:   open ${url}/_jailkeeper/console/ and sign in with the token`);
}
