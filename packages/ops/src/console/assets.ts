import { createRequire } from 'node:module';
import type { ConsoleAsset } from '@jailkeeper/console';
import { JailkeeperConfigError } from '@jailkeeper/core';
import modulePath from './module-path.cjs';

/** A file the console serves: read once at setup, never from a path the request names. */
export type Asset = ConsoleAsset;

/**
 * The console's front end, from @jailkeeper/console: an optional peer of this package, so that only
 * an app that turns the console on installs it and its libraries (lit-html, uPlot). Loaded when the
 * console is set up, and refused then, naming the option, when it is not installed.
 */
export function loadAssets(option: string): Map<string, Asset> {
  let frontEnd: typeof import('@jailkeeper/console');
  try {
    frontEnd = createRequire(modulePath)('@jailkeeper/console');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new JailkeeperConfigError(
      'JK_ERR_INVALID_OPTION',
      option,
      `${option} needs the console's front end, @jailkeeper/console, which is not installed: npm install @jailkeeper/console.`,
      { cause: error },
    );
  }
  return frontEnd.loadConsoleAssets();
}
