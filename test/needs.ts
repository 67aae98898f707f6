/**
 * The programs some tests need beyond Node and npm: redis-server (or a Redis at REDIS_URL),
 * Debian's Chromium, nginx and ipset. Where one is missing, the tests that need it are skipped
 * with this note (the README's test command passes on a machine with Node and npm only). .ci/run
 * installs them all: under CI=true a missing one fails the test file instead, so CI skips nothing.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Whether `name` is an executable on PATH. */
function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** False when `available`, else the skip note (or, under CI=true, an error). */
function need(what: string, available: boolean, install: string): string | false {
  if (available) return false;
  const note = `needs ${what}, which is not installed here (${install}): skipped`;
  if (process.env.CI === 'true')
    throw new Error(`CI=true, and this test file ${note}. CI must skip nothing.`);
  return note;
}

/** Skip note of the tests that need a Redis: REDIS_URL, or redis-server to start one. */
export const NO_REDIS = need(
  'redis-server',
  Boolean(process.env.REDIS_URL) || onPath('redis-server'),
  'apt-get install redis-server, or set REDIS_URL',
);

/** Where the console's browser tests find Debian's Chromium (playwright-core never downloads one). */
export const CHROMIUM = '/usr/bin/chromium';
/** Skip note of the console's browser tests. */
export const NO_CHROMIUM = need('Chromium', existsSync(CHROMIUM), 'apt-get install chromium');

/** nginx and ipset, which check the export formats by loading them. */
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
export const IPSET = ['/usr/sbin/ipset', '/sbin/ipset'].find((p) => existsSync(p));
/** Skip notes of the export checks. */
export const NO_NGINX = need('nginx', NGINX !== undefined, 'apt-get install nginx-light');
export const NO_IPSET = need('ipset', IPSET !== undefined, 'apt-get install ipset');
