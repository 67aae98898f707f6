import { randomBytes, timingSafeEqual } from 'node:crypto';

/** A signed-in operator of the console. */
export interface ConsoleSession {
  readonly id: string;
  /** Sent by the page on every state-changing call (`x-jailkeeper-csrf`); never in a cookie. */
  readonly csrf: string;
  /** The name the operator gave at sign-in, for the audit log. */
  readonly who: string;
  /** The address the session was opened from. */
  readonly from: string;
  readonly createdMs: number;
  lastSeenMs: number;
}

/** The cookie that carries the session id: HttpOnly and SameSite=Strict, scoped to the console's API. */
const SESSION_COOKIE = 'jk_console';
const MAX_SESSIONS = 1000;

/**
 * Console sessions, in memory: a random 256-bit id in an HttpOnly cookie, a separate CSRF token the
 * page keeps in memory, an idle timeout and a maximum age. Bounded: past MAX_SESSIONS the oldest goes.
 */
export class SessionStore {
  readonly #sessions = new Map<string, ConsoleSession>();
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(options: { idleMs: number; maxAgeMs: number; now: () => number }) {
    this.#idleMs = options.idleMs;
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now;
  }

  open(who: string, from: string): ConsoleSession {
    if (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next();
      if (!oldest.done) this.#sessions.delete(oldest.value);
    }
    const now = this.#now();
    const session: ConsoleSession = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      who,
      from,
      createdMs: now,
      lastSeenMs: now,
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session named by the request's cookie header (touched), or undefined. */
  fromCookie(cookieHeader: string | undefined): ConsoleSession | undefined {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    if (id === undefined) return undefined;
    const session = this.#sessions.get(id);
    if (session === undefined) return undefined;
    const now = this.#now();
    if (now - session.lastSeenMs > this.#idleMs || now - session.createdMs > this.#maxAgeMs) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.lastSeenMs = now;
    return session;
  }

  /** True while the session exists and has not timed out (not touched). */
  isLive(session: ConsoleSession): boolean {
    const now = this.#now();
    return (
      this.#sessions.get(session.id) === session &&
      now - session.lastSeenMs <= this.#idleMs &&
      now - session.createdMs <= this.#maxAgeMs
    );
  }

  close(session: ConsoleSession): void {
    this.#sessions.delete(session.id);
  }
}

/** True when the header carries the session's CSRF token (compared in constant time). */
export function csrfMatches(session: ConsoleSession, header: unknown): boolean {
  if (typeof header !== 'string') return false;
  const given = Buffer.from(header);
  const expected = Buffer.from(session.csrf);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/**
 * The Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no other site sends it), no
 * Path, so the browser scopes it to the console's API directory, where the sign-in call was made.
 */
export function sessionCookie(id: string | undefined, secure: boolean): string {
  const value = id ?? '';
  const expiry = id === undefined ? '; Max-Age=0' : '';
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}${expiry}`;
}
