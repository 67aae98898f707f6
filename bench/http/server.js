// One benchmark server: node server.js <express|fastify> <config> <scenario>   (see app.js)
// Prints "ready <port>" when listening on 127.0.0.1. Commands on stdin, one per line:
// - `runs`: prints "runs <json>", the login handler's runs per client address;
// - `profile-start`, `profile-stop <file>`: a CPU profile of what happens in between (prints
//   "profiled <json>" when written);
// - `exit`: prints "mem <json>" (heap after a GC when run with --expose-gc) and exits.
// SIGINT also exits normally, so that `node --cpu-prof server.js ...` writes its profile.
import { createInterface } from 'node:readline';
import { buildApp } from './app.js';
import { startHeapProfile, startProfile, stopHeapProfile, stopProfile } from './profiler.js';

const [framework, config = 'bare', scenario = 'clean'] = process.argv.slice(2);
const app = await buildApp(framework, config, scenario);
const port = await app.listen();

const exit = () => {
  globalThis.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  process.stdout.write(`mem ${JSON.stringify({ rss, heapUsed })}\n`, () => process.exit(0));
};
process.on('SIGINT', exit);
createInterface({ input: process.stdin }).on('line', async (line) => {
  const [command, arg] = line.split(' ');
  if (command === 'runs') process.stdout.write(`runs ${JSON.stringify(Object.fromEntries(app.runs))}\n`);
  else if (command === 'profile-start') {
    await startProfile();
    process.stdout.write('profiling true\n');
  } else if (command === 'profile-stop') {
    await stopProfile(arg);
    process.stdout.write(`profiled ${JSON.stringify(arg)}\n`);
  } else if (command === 'heap-start') {
    await startHeapProfile(arg ? Number(arg) : undefined);
    process.stdout.write('heaping true\n');
  } else if (command === 'heap-stop') {
    await stopHeapProfile(arg);
    process.stdout.write(`heaped ${JSON.stringify(arg)}\n`);
  } else if (command === 'exit') exit();
});
console.log(`ready ${port}`);
