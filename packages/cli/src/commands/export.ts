import { spawn } from 'node:child_process';
import { parseDuration } from '@jailkeeper/core';
import { EXPORT_FORMATS, type ExportFormat } from '@jailkeeper/ops';
import type { Backend } from '../backend.js';
import { type Io, usage, type Values, writeAtomic } from './shared.js';

function runHook(command: string, io: Io): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => {
      if (code !== 0) io.err(`jailkeeper: --exec "${command}" exited with ${code}\n`);
      resolve();
    });
    child.on('error', (error) => {
      io.err(`jailkeeper: --exec "${command}" failed: ${error.message}\n`);
      resolve();
    });
  });
}

/** `jailkeeper export`: the bans in an edge's format, once or (--watch) on every change. */
export async function exportCommand(
  backend: Backend,
  values: Values,
  io: Io,
  signal: AbortSignal,
): Promise<void> {
  const format = values.format as ExportFormat | undefined;
  if (format === undefined || !EXPORT_FORMATS.includes(format)) {
    usage(`export needs --format, one of ${EXPORT_FORMATS.join(', ')}.`);
  }
  if (values.watch && values.out === undefined) usage('export --watch needs --out FILE.');
  const intervalMs = values.interval === undefined ? 10_000 : parseDuration(values.interval);
  if (intervalMs === undefined || intervalMs < 100)
    usage('--interval must be a duration of at least 100ms, such as 10s.');
  let last: string | undefined;
  const once = async () => {
    const text = await backend.exportText(format, { name: values.name, jail: values.jail });
    if (values.out === undefined) {
      io.out(text);
      return;
    }
    if (text === last) return;
    last = text;
    await writeAtomic(values.out, text);
    io.err(`jailkeeper: wrote ${values.out} (${format})\n`);
    if (values.exec !== undefined) await runHook(values.exec, io);
  };
  await once();
  if (!values.watch) return;
  // Re-exported on every ban event (Redis) and on a timer (expiries, the admin API, missed events).
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running
        .then(once)
        .catch((error: Error) => io.err(`jailkeeper: export failed: ${error.message}\n`));
    }, 200);
  };
  const stopWatch = backend.watch ? await backend.watch(schedule) : () => {};
  const tick = setInterval(schedule, intervalMs);
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  clearInterval(tick);
  clearTimeout(timer);
  stopWatch();
  await running;
}
