// Starts and stops V8's sampling profiler from inside a process (what --cpu-prof records), so that
// a profile covers only the measured window, not start-up and warm-up.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

let session;

/** Starts sampling every `intervalUs` microseconds. */
export async function startProfile(intervalUs = 100) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
}

/** Stops sampling and writes the profile (a .cpuprofile, as --cpu-prof writes) to `file`. */
export async function stopProfile(file) {
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  session = undefined;
  writeFileSync(file, JSON.stringify(profile));
}
