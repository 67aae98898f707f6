/**
 * The table of every error and warning code jailkeeper emits, with its message template and
 * docs anchor. A retired code is never reused: mark it retired in docs/errors.md instead.
 */
export const ERROR_CODES = {
  JK_ERR_INVALID_OPTION: { kind: 'config', docs: 'jk_err_invalid_option' },
  JK_ERR_UNKNOWN_OPTION: { kind: 'config', docs: 'jk_err_unknown_option' },
  JK_ERR_UNKNOWN_PRESET: { kind: 'config', docs: 'jk_err_unknown_preset' },
  JK_ERR_INVALID_DURATION: { kind: 'config', docs: 'jk_err_invalid_duration' },
  JK_ERR_INVALID_STATUS: { kind: 'config', docs: 'jk_err_invalid_status' },
  JK_ERR_INVALID_CIDR: { kind: 'config', docs: 'jk_err_invalid_cidr' },
  JK_ERR_JAIL_MATCHES_NOTHING: { kind: 'config', docs: 'jk_err_jail_matches_nothing' },
  JK_ERR_PARDON_OVERLAP: { kind: 'config', docs: 'jk_err_pardon_overlap' },
  JK_ERR_OPTION_CONFLICT: { kind: 'config', docs: 'jk_err_option_conflict' },
  JK_ERR_UNSAFE_TRUST: { kind: 'config', docs: 'jk_err_unsafe_trust' },
  JK_ERR_INVALID_IP: { kind: 'input', docs: 'jk_err_invalid_ip' },
  JK_ERR_UNKNOWN_JAIL: { kind: 'input', docs: 'jk_err_unknown_jail' },
  JK_ERR_IGNORED_CLIENT: { kind: 'input', docs: 'jk_err_ignored_client' },
  JK_ERR_CLOSED: { kind: 'runtime', docs: 'jk_err_closed' },
  JK_ERR_STORE: { kind: 'runtime', docs: 'jk_err_store' },
  JK_ERR_ADMIN_UNAUTHORIZED: { kind: 'input', docs: 'jk_err_admin_unauthorized' },
  JK_ERR_ADMIN_FORBIDDEN: { kind: 'input', docs: 'jk_err_admin_forbidden' },
  JK_ERR_BAD_REQUEST: { kind: 'input', docs: 'jk_err_bad_request' },
  JK_ERR_INVALID_ARGUMENT: { kind: 'input', docs: 'jk_err_invalid_argument' },
  /** The CLI's import-fail2ban: a failregex that does not compile (fail2ban refuses it too). */
  JK_ERR_FAIL2BAN_REGEX: { kind: 'input', docs: 'jk_err_fail2ban_regex' },
  JK_ERR_INVALID_ROUTE_CONFIG: { kind: 'config', docs: 'jk_err_invalid_route_config' },
  JK_ERR_EXPRESS_TRUST: { kind: 'config', docs: 'jk_err_express_trust' },
  JK_ERR_REGISTERED_TWICE: { kind: 'config', docs: 'jk_err_registered_twice' },
  JK_ERR_MISSING_PACKAGE: { kind: 'config', docs: 'jk_err_missing_package' },
} as const;

/** Every error code jailkeeper throws (`JK_ERR_*`). */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Every warning code jailkeeper emits (`JK_WRN_*`), with its docs anchor. */
export const WARNING_CODES = {
  JK_WRN_PERSIST_CORRUPT: 'jk_wrn_persist_corrupt',
  JK_WRN_PERSIST_WRITE: 'jk_wrn_persist_write',
  JK_WRN_PERSIST_UNREADABLE: 'jk_wrn_persist_unreadable',
  JK_WRN_CLOSE_DROPPED: 'jk_wrn_close_dropped',
  JK_WRN_IPV6_SUBNET: 'jk_wrn_ipv6_subnet',
  JK_WRN_FORWARDED_NO_TRUST: 'jk_wrn_forwarded_no_trust',
  JK_WRN_UNTRUSTED_FORWARDED: 'jk_wrn_untrusted_forwarded',
  JK_WRN_FORWARDED_HEADER_MISMATCH: 'jk_wrn_forwarded_header_mismatch',
  JK_WRN_SINGLE_PRIVATE_PEER: 'jk_wrn_single_private_peer',
  JK_WRN_MALFORMED_CLIENT_HEADER: 'jk_wrn_malformed_client_header',
  JK_WRN_CUSTOM_CLIENT_IP: 'jk_wrn_custom_client_ip',
  JK_WRN_LISTENER_ERROR: 'jk_wrn_listener_error',
  JK_WRN_STORE_DEGRADED: 'jk_wrn_store_degraded',
  JK_WRN_NOT_READY: 'jk_wrn_not_ready',
  JK_WRN_NOTIFY_FAILED: 'jk_wrn_notify_failed',
  JK_WRN_ROUTE_BEFORE_PLUGIN: 'jk_wrn_route_before_plugin',
  JK_WRN_INVALID_EVENT: 'jk_wrn_invalid_event',
  JK_WRN_CRAWLER_DNS: 'jk_wrn_crawler_dns',
  JK_WRN_TRUST_FUNCTION_THREW: 'jk_wrn_trust_function_threw',
  JK_WRN_COUNTS_EVERY_STATUS: 'jk_wrn_counts_every_status',
  JK_WRN_NO_PEER_ADDRESS: 'jk_wrn_no_peer_address',
  JK_WRN_BROKEN_LINK: 'jk_wrn_broken_link',
  JK_WRN_DISTINCT_GUESSES: 'jk_wrn_distinct_guesses',
  JK_WRN_LATE_FAIL: 'jk_wrn_late_fail',
  JK_WRN_PATTERN_MISSES_ROUTES: 'jk_wrn_pattern_misses_routes',
  JK_WRN_KEY_FUNCTION: 'jk_wrn_key_function',
} as const;

/** Every warning code (`JK_WRN_*`). */
export type WarningCode = keyof typeof WARNING_CODES;

/**
 * Where the codes are explained: the repository's page, which the npm package also ships as
 * `@jailkeeper/core/docs/errors.md` for reading offline.
 */
const DOCS = 'https://github.com/jailkeeper/jailkeeper/blob/main/docs/errors.md';

const kJailkeeperError = Symbol.for('jailkeeper.error');

/** Where a code is explained. */
export function docsFor(code: ErrorCode | WarningCode): string {
  const anchor =
    code in ERROR_CODES ? ERROR_CODES[code as ErrorCode].docs : WARNING_CODES[code as WarningCode];
  return `${DOCS}#${anchor}`;
}

/**
 * The base of every error jailkeeper throws. Configuration errors are {@link JailkeeperConfigError}s,
 * which are also `TypeError`s; `instanceof JailkeeperError` is true for both.
 */
export class JailkeeperError extends Error {
  readonly code: ErrorCode;
  declare readonly [kJailkeeperError]: true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${message} See ${docsFor(code)}`, options);
    this.name = 'JailkeeperError';
    this.code = code;
    Object.defineProperty(this, kJailkeeperError, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[kJailkeeperError] === true
    );
  }
}

/** A configuration mistake found at construction. Also a `TypeError`. */
export class JailkeeperConfigError extends TypeError {
  readonly code: ErrorCode;
  /** The option path, e.g. `jails.login.maxRetry`. */
  readonly option: string;
  declare readonly [kJailkeeperError]: true;

  constructor(code: ErrorCode, option: string, message: string, options?: { cause?: unknown }) {
    super(`${message} See ${docsFor(code)}`, options);
    this.name = 'JailkeeperConfigError';
    this.code = code;
    this.option = option;
    Object.defineProperty(this, kJailkeeperError, { value: true });
  }
}

/** Renders a received value for an error message, short and without control characters. */
export function describe(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'function') text = 'a function';
  else if (value instanceof RegExp) text = String(value);
  else if (Array.isArray(value)) text = `an array of ${value.length}`;
  else if (value === null) text = 'null';
  else if (typeof value === 'object') text = 'an object';
  else text = String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Throws the standard configuration error: `<path> must be <expected>; received <value>.` */
export function invalid(
  path: string,
  expected: string,
  received: unknown,
  code: ErrorCode = 'JK_ERR_INVALID_OPTION',
): never {
  throw new JailkeeperConfigError(code, path, `${path} must be ${expected}; received ${describe(received)}.`);
}

/** A pino-compatible logger: only the methods jailkeeper calls. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

/** Emits each warning code at most once per warner. */
export class Warner {
  #logger: Logger | undefined;
  readonly #seen = new Set<string>();
  readonly #onWarning: ((code: WarningCode, message: string) => void) | undefined;

  constructor(logger: Logger | undefined, onWarning?: (code: WarningCode, message: string) => void) {
    this.#logger = logger;
    this.#onWarning = onWarning;
  }

  /** Adopts a logger when none was configured (a framework's own, e.g. Fastify's `app.log`). */
  adopt(logger: Logger): void {
    this.#logger ??= logger;
  }

  /** True once the code has been emitted: callers use it to skip work for a warning already given. */
  has(code: WarningCode): boolean {
    return this.#seen.has(code);
  }

  warn(code: WarningCode, message: string, details?: object): void {
    if (this.#seen.has(code)) return;
    this.#seen.add(code);
    this.repeat(code, message, details);
  }

  /** A warning given each time it happens (the start of every store outage), not once. */
  repeat(code: WarningCode, message: string, details?: object): void {
    this.#seen.add(code);
    const text = `${message} See ${docsFor(code)}`;
    if (this.#logger) this.#logger.warn({ code, ...details }, text);
    else process.emitWarning(text, { code });
    this.#onWarning?.(code, text);
  }
}
