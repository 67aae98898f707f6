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

let heapSession;

/** Starts V8's sampling heap profiler, keeping objects the GC has collected (allocation, not retention). */
export async function startHeapProfile(samplingInterval = 4096) {
  heapSession = new Session();
  heapSession.connect();
  await heapSession.post('HeapProfiler.enable');
  await heapSession.post('HeapProfiler.startSampling', {
    samplingInterval,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}

/** Stops it and writes the profile (a .heapprofile) to `file`. */
export async function stopHeapProfile(file) {
  const { profile } = await heapSession.post('HeapProfiler.stopSampling');
  heapSession.disconnect();
  heapSession = undefined;
  writeFileSync(file, JSON.stringify(profile));
}
