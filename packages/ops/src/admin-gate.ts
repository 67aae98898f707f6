import { createHash, timingSafeEqual } from 'node:crypto';
import { JailkeeperConfigError } from '@jailkeeper/core';
import { invalid, networkList } from '@jailkeeper/core/adapter';
import { IpSet, parseIp, requireClient } from '@jailkeeper/core/operator';
import { type AdminRequest, type AdminResponse, failure } from './admin-http.js';
import type { AuditLog } from './console/audit-log.js';
import { type LockoutOptions, TokenLockout } from './token-lockout.js';

const FORWARDING = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-client-ip', 'cf-connecting-ip'];
const LOOPBACK = new IpSet(networkList('loopback', ['loopback']));

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** What the gate needs: the admin API's (or the standalone console's) access options. */
export interface GateOptions {
  token: unknown;
  allowRemote: unknown;
  lockout: LockoutOptions | undefined;
  /** The option path named in errors, e.g. `admin`. */
  path: string;
  now: () => number;
  /** Where each lockout is recorded (once per lockout: the caller's key and when it ends). */
  audit?: AuditLog;
}

/** The key a caller is counted under: its address, or its IPv6 /64. */
export function callerKey(peer: string | undefined): string {
  try {
    return requireClient(peer ?? '', 64).key;
  } catch {
    return 'unknown';
  }
}

/**
 * Who may use the admin API and the console: callers on loopback (or in `allowRemote`) that did not
 * come through a proxy, not locked out, holding the token. Wrong tokens are counted here, per
 * caller, whatever jails the app configured.
 */
export class AdminGate {
  readonly lockout: TokenLockout;
  readonly #expected: Buffer;
  readonly #remote: IpSet | 'any' | null;
  readonly #audit: AuditLog | undefined;
  readonly #now: () => number;

  constructor(options: GateOptions) {
    const { token, allowRemote = false, path } = options;
    if (typeof token !== 'string' || token.length < 16) {
      throw new JailkeeperConfigError(
        'JK_ERR_INVALID_OPTION',
        `${path}.token`,
        `${path}.token must be a secret of at least 16 characters; received ${typeof token === 'string' ? `${token.length} characters` : String(token)}.`,
      );
    }
    this.#expected = digest(token);
    if (allowRemote === true) this.#remote = 'any';
    else if (Array.isArray(allowRemote))
      this.#remote = new IpSet(networkList(`${path}.allowRemote`, allowRemote));
    else if (allowRemote === false) this.#remote = null;
    else invalid(`${path}.allowRemote`, 'true, false or a list of CIDRs', allowRemote);
    this.lockout = new TokenLockout(options.lockout, options.now);
    this.#audit = options.audit;
    this.#now = options.now;
  }

  #callerAllowed(request: AdminRequest): boolean {
    if (this.#remote === 'any') return true;
    const ip = request.peer === undefined ? undefined : parseIp(request.peer);
    if (ip === undefined) return false;
    if (this.#remote?.has(ip)) return true;
    if (!LOOPBACK.has(ip)) return false;
    return !FORWARDING.some((h) => request.headers[h] !== undefined);
  }

  /** A refusal for a caller that may not be served at all (403), or is locked out (429); else undefined. */
  admit(request: AdminRequest): AdminResponse | undefined {
    if (!this.#callerAllowed(request)) {
      return failure(
        403,
        'JK_ERR_ADMIN_FORBIDDEN',
        'The admin API answers loopback callers only (not through a proxy); set allowRemote to open it.',
      );
    }
    const leftMs = this.lockout.lockedFor(callerKey(request.peer));
    if (leftMs > 0) return locked(leftMs);
    return undefined;
  }

  /** True for the right token, compared in constant time. */
  matches(token: string): boolean {
    return timingSafeEqual(digest(token), this.#expected);
  }

  /**
   * Checks a presented token: undefined when right; otherwise the wrong token is counted against
   * the caller and the answer is 401, or 429 for the one that locks the caller out.
   */
  verify(token: string, request: AdminRequest): AdminResponse | undefined {
    if (this.matches(token)) return undefined;
    const key = callerKey(request.peer);
    const result = this.lockout.fail(key);
    if (result.locked) {
      const untilMs = this.#now() + result.retryAfterMs;
      this.#audit?.record({
        atMs: this.#now(),
        who: 'unknown',
        via: 'gate',
        from: key,
        action: 'lockout',
        target: key,
        ok: true,
        detail: `${this.lockout.maxRetry} wrong tokens: refused until ${new Date(untilMs).toISOString()}`,
      });
      return locked(result.retryAfterMs);
    }
    return unauthorized();
  }

  /** Checks the bearer token of an API call; a missing header is a 401 that is not counted. */
  verifyBearer(request: AdminRequest): AdminResponse | undefined {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || header === '') return unauthorized();
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    // Any other scheme is a wrong credential too, and counted like one.
    return this.verify(token === '' ? `\u0000${header}` : token, request);
  }
}

/** 401 with a Bearer challenge. */
export function unauthorized(): AdminResponse {
  return failure(401, 'JK_ERR_ADMIN_UNAUTHORIZED', 'A valid bearer token is required.', {
    'www-authenticate': 'Bearer realm="jailkeeper"',
  });
}

function locked(leftMs: number): AdminResponse {
  const seconds = Math.max(1, Math.ceil(leftMs / 1000));
  return failure(
    429,
    'JK_ERR_ADMIN_FORBIDDEN',
    `Too many wrong tokens from this address: it is refused for ${seconds} s more, even with the right token.`,
    { 'retry-after': String(seconds) },
  );
}
