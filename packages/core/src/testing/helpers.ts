import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../errors.js';

/**
 * Waits until `predicate` holds, polling every `every` ms, and returns how long it took; throws
 * (naming `what`) when it does not hold within `within` ms. For state that an event proves but
 * that has no event of its own to await (a ban reaching another instance through Redis).
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  {
    within = 5000,
    every = 10,
    what = 'the condition',
  }: { within?: number; every?: number; what?: string } = {},
): Promise<number> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > within) throw new Error(`${what} did not hold within ${within} ms`);
    await sleep(every);
  }
  return Date.now() - start;
}

/** A logger that says nothing: for tests that provoke warnings on purpose. */
export const quietLogger: Logger = Object.freeze({ info() {}, warn() {}, error() {} });

/** A logger that keeps each line's code (or event) and message, for tests that assert on them. */
export function recordingLogger(): Logger & {
  readonly lines: Array<{ level: 'info' | 'warn' | 'error'; code?: string; event?: string; msg?: string }>;
} {
  const lines: Array<{ level: 'info' | 'warn' | 'error'; code?: string; event?: string; msg?: string }> = [];
  const at =
    (level: 'info' | 'warn' | 'error') =>
    (obj: { code?: string; event?: string }, msg?: string): void => {
      lines.push({ level, code: obj.code, event: obj.event, msg });
    };
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}
