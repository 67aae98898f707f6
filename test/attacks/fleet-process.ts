/**
 * One instance of the process fleet (process-fleet.test.ts): the attack matrix's login app on the
 * shared Redis, with the store's default deadline (100 ms), in a process of its own. Driven over
 * IPC: it answers its port, then, per repetition, the handler runs of a client once every request
 * it received is decided, and how many times its store went down.
 * argv: framework name, Redis URL, key prefix.
 */
import { deploy, FRAMEWORKS, LOGIN_JAIL } from './fleet.js';

const [name, url, prefix] = process.argv.slice(2);
const framework = FRAMEWORKS.find((f) => f.name === name);
if (framework === undefined || url === undefined || prefix === undefined) {
  throw new Error(`usage: fleet-process <framework> <redis url> <prefix>; got ${process.argv.slice(2)}`);
}
process.env.REDIS_URL = url; // deploy() then uses this Redis and never starts or stops one
const fleet = await deploy(
  framework,
  { name: 'Redis, 1 instance', redis: true, instances: 1 },
  { jails: { login: LOGIN_JAIL } },
  { prefix, timeoutMs: 100 },
);
const [instance] = fleet.instances;
if (instance === undefined) throw new Error('no instance');
// Started on a loaded machine, a store may have gone on degraded (startTimeout): the attack begins
// once it answers, and only what happens from then on is counted.
for (let waited = 0; instance.keeper.store.degraded === true; waited += 20) {
  if (waited > 20_000) throw new Error('the store stayed degraded 20 s after start');
  await new Promise((resolve) => setTimeout(resolve, 20));
}
let storeDowns = 0;
const reasons: string[] = [];
instance.keeper.on('storeDown', (event) => {
  storeDowns++;
  reasons.push(event.reason);
});

process.on('message', (message: { op: string; id: number; client?: string }) => {
  void (async () => {
    if (message.op === 'runs') {
      await fleet.settle(20_000);
      await fleet.idle(10_000);
      const client = message.client as string;
      process.send?.({
        id: message.id,
        runs: fleet.probe.runsOf(client),
        banned: instance.keeper.check(client).banned,
        storeDowns,
        reasons,
        degraded: instance.keeper.store.degraded === true,
      });
    } else if (message.op === 'exit') {
      await fleet.close();
      process.exit(0);
    }
  })().catch((error: unknown) => {
    process.send?.({ id: message.id, error: String((error as Error)?.stack ?? error) });
  });
});
process.send?.({ ready: true, port: instance.port });
