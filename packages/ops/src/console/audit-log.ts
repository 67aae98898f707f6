import type { Logger } from '@jailkeeper/core';

/** One operator action (or a refused sign-in), as the audit log keeps it. */
export interface AuditEntry {
  readonly atMs: number;
  /** The operator's name given at sign-in, or the API caller's `x-jailkeeper-actor`, or `token`. */
  readonly who: string;
  /** `console` (a signed-in session), `api` (a bearer token) or `gate` (the admin API itself). */
  readonly via: 'console' | 'api' | 'gate';
  /** The caller's address. */
  readonly from: string;
  readonly action:
    | 'ban'
    | 'unban'
    | 'unban-all'
    | 'ignore-add'
    | 'ignore-remove'
    | 'sign-in'
    | 'sign-out'
    | 'lockout';
  /** The address, network or jail acted on. */
  readonly target: string;
  readonly ok: boolean;
  /** What came of it, or why it failed. */
  readonly detail: string;
}

const MAX_ENTRIES = 1000;

/** Keeps who did what, newest last: a bounded ring read by the console, each entry also logged. */
export class AuditLog {
  readonly #entries: AuditEntry[] = [];
  readonly #logger: Logger | undefined;
  readonly #listeners = new Set<(entry: AuditEntry) => void>();

  constructor(logger: Logger | undefined) {
    this.#logger = logger;
  }

  record(entry: AuditEntry): void {
    this.#entries.push(entry);
    if (this.#entries.length > MAX_ENTRIES) this.#entries.shift();
    const line = `jailkeeper: ${entry.who} (${entry.via} from ${entry.from}) ${entry.action} ${entry.target}: ${entry.ok ? 'done' : 'failed'}${entry.detail ? ` (${entry.detail})` : ''}`;
    if (entry.ok) this.#logger?.info({ event: 'audit', ...entry }, line);
    else this.#logger?.warn({ event: 'audit', ...entry }, line);
    for (const listener of this.#listeners) listener(entry);
  }

  /** The newest entries first, at most `limit`. */
  list(limit = MAX_ENTRIES): AuditEntry[] {
    return this.#entries.slice(-limit).reverse();
  }

  /** Calls back on every new entry; returns the function that stops it. */
  subscribe(listener: (entry: AuditEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Text an operator typed (a name, a reason), made safe to keep: no control characters, bounded. */
export function cleanText(value: unknown, max: number): string {
  return String(value ?? '')
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .trim()
    .slice(0, max);
}
