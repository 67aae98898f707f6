/**
 * Where the tests find fail2ban's own files (stock jail.conf, filter.d, annotated test logs).
 * They are GPL-2.0, so this MIT repository does not hold them: .ci/run unpacks Debian's fail2ban
 * package (apt-get download fail2ban; dpkg -x, never installed) into .tmp/fail2ban-deb, or
 * FAIL2BAN_ROOT names such a tree. Without them, the tests that need them skip with a note.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FAIL2BAN_ROOT =
  process.env.FAIL2BAN_ROOT ?? fileURLToPath(new URL('../../../.tmp/fail2ban-deb/', import.meta.url));
/** jail.conf and filter.d. */
export const FAIL2BAN_CONF = join(FAIL2BAN_ROOT, 'etc/fail2ban/');
/** fail2ban's annotated filter test logs. */
export const FAIL2BAN_LOGS = join(FAIL2BAN_ROOT, 'usr/lib/python3/dist-packages/fail2ban/tests/files/logs/');

export const HAS_FAIL2BAN = existsSync(join(FAIL2BAN_CONF, 'jail.conf')) && existsSync(FAIL2BAN_LOGS);

/** For `{ skip }`: false when the files are there, else the note saying where they come from. */
export const FAIL2BAN_SKIP: false | string = HAS_FAIL2BAN
  ? false
  : `fail2ban's files are not at ${FAIL2BAN_ROOT}: .ci/run unpacks Debian's fail2ban package there (apt-get download fail2ban; dpkg -x), or set FAIL2BAN_ROOT`;
