import { didYouMean } from '../config/validate.js';
import { JailkeeperConfigError } from '../errors.js';
import { badBotPattern } from '../signatures/bad-bots.js';
import type { JailOptions } from './options.js';

/** A preset: a jail's options, frozen; spread it to change one, `{ ...presets.login, paths: ['/api/session'] }`. */
export type JailPreset = Readonly<JailOptions>;

function frozen(jail: JailOptions): JailPreset {
  for (const value of Object.values(jail)) if (Array.isArray(value)) Object.freeze(value);
  for (const value of Object.values(jail)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) Object.freeze(value);
  }
  return Object.freeze(jail);
}

/**
 * Names that tools ask any object for (a thenable check, JSON, test matchers, React and DOM
 * checks, and names framed in `@@`, `$$` or `__`): reading them answers undefined, as from a plain object.
 */
const PROBED = new Set(['then', 'toJSON', 'asymmetricMatch', 'nodeType', 'inspect']);

/** The presets, behind a guard: a name that is not a preset throws instead of giving undefined. */
function refuseUnknown<T extends object>(table: T): T {
  const names = Object.keys(table);
  return new Proxy(table, {
    get(target, key, receiver) {
      if (typeof key === 'symbol' || key in target || PROBED.has(key) || /^(@@|\$\$|__)/.test(key)) {
        return Reflect.get(target, key, receiver);
      }
      throw new JailkeeperConfigError(
        'JK_ERR_UNKNOWN_PRESET',
        `presets.${key}`,
        `presets.${key} is not a preset.${didYouMean(key, names)} The presets are ${names.join(', ')}.`,
      );
    },
  });
}

/**
 * The jails users copy, tuned on traffic of both kinds (see docs/detection.md for what each catches
 * and spares, and the tests that show it). Each is a plain options object. Reading a preset that
 * does not exist throws `JK_ERR_UNKNOWN_PRESET` at once: in JavaScript, `{ ...presets.logins }`
 * would otherwise be `{}` and, with `paths` added, a jail counting every response there.
 * @example
 * createJailkeeper({
 *   jails: {
 *     login: { ...presets.login, paths: ['/api/session'] },
 *     scanners: presets.scanners,
 *     forbidden: { ...presets.forbidden, exempt: ['/ws'] },
 *     badBots: presets.badBots,
 *   },
 * });
 */
export const presets: {
  /** Password guessing: 5 refused sign-ins (401) within 10 minutes ban for an hour; a success pardons. */
  readonly login: JailPreset;
  /**
   * Scanners: 10 distinct missing paths within 10 minutes, or 2 probes (a probe path weighs 5),
   * ban for an hour. Re-requests of one missing asset count once; a path many networks fail on is
   * the site's broken link and counts for nobody.
   */
  readonly scanners: JailPreset;
  /**
   * Authorization probing: 403s on 20 distinct paths within 10 minutes ban for 10 minutes. A user
   * refused again and again on the same pages (a forbidden button, a polled endpoint) counts once per page.
   */
  readonly forbidden: JailPreset;
  /** fail2ban's bad bots: a request whose whole user agent is on apache-badbots' list bans for 2 days. */
  readonly badBots: JailPreset;
} = refuseUnknown(
  Object.freeze({
    login: frozen({
      statuses: [401],
      methods: ['POST'],
      paths: ['/login'],
      maxRetry: 5,
      findTime: '10m',
      banTime: '1h',
      pardon: { statuses: [200], for: '30d' },
    }),
    scanners: frozen({
      statuses: [404, 410],
      distinct: 'path',
      sharedPaths: true,
      probes: true,
      maxRetry: 10,
      findTime: '10m',
      banTime: '1h',
    }),
    forbidden: frozen({
      statuses: [403],
      distinct: 'path',
      maxRetry: 20,
      findTime: '10m',
      banTime: '10m',
    }),
    badBots: frozen({
      // No methods: a jail that names methods targets routes, and every request would then take an
      // attempt slot (a store call) before its handler; a user agent is judged on any method.
      statuses: 'any',
      userAgents: [badBotPattern()],
      maxRetry: 1,
      banTime: '2d',
    }),
  }),
);
