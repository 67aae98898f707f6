import { createHash } from 'node:crypto';
import type { ClientIdentity } from './client.js';

/** The prefix of a client key that names an account rather than an address. */
const ACCOUNT_PREFIX = 'acct:';
const SAFE = /^[a-z0-9._@+-]{1,64}$/;
/** Characters that render as nothing (zero-width, joiners, variation selectors, soft hyphen, BOM). */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}]/gu;

/**
 * The key jails keyed by account count and ban under: `acct:` and the account as the app named
 * it, normalised (NFKC, invisible characters dropped, trimmed, lower case: `Alice`, `alice ` and
 * `al\u200bice` are one account). A name with
 * other characters, or longer than 64, is keyed by a digest of it, so that a key stays short and
 * safe in every store (Redis keys, hash tags, export formats). Undefined for an empty name.
 */
export function accountKey(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  const normal = name.normalize('NFKC').replace(INVISIBLE, '').trim().toLowerCase();
  if (normal === '') return undefined;
  if (SAFE.test(normal)) return `${ACCOUNT_PREFIX}${normal}`;
  return `${ACCOUNT_PREFIX}sha256-${createHash('sha256').update(normal).digest('hex').slice(0, 32)}`;
}

/** The prefix of a client key a jail's key function made (`key: (facts) => string`). */
const KEY_PREFIX = 'key:';
/** What a key function's key may be as it is; longer or other characters are digested. */
const SAFE_KEY = /^[A-Za-z0-9._@+:=-]{1,64}$/;

/**
 * The key a jail keyed by a function counts and bans under: `key:` and the function's string,
 * normalised as account names are (NFKC, invisible characters dropped, trimmed) but keeping its
 * case (API keys and tokens are case-sensitive). A key longer than 64 characters, or with other
 * characters, is keyed by a digest of it: whatever a client sends, a key stays short and safe in
 * every store. Undefined for a string that is empty once normalised; null for a value that is not
 * a string (the caller warns).
 */
export function functionKey(value: unknown): string | undefined | null {
  if (typeof value !== 'string') return null;
  // Normalising a huge string costs as much as the string: digest what no key needs beyond.
  const bounded = value.length > 4096 ? value.slice(0, 4096) : value;
  const normal = bounded.normalize('NFKC').replace(INVISIBLE, '').trim();
  if (normal === '') return undefined;
  if (value.length <= 4096 && SAFE_KEY.test(normal)) return `${KEY_PREFIX}${normal}`;
  const digest = createHash('sha256').update(normal);
  if (value.length > 4096) digest.update(value.slice(4096));
  return `${KEY_PREFIX}sha256-${digest.digest('hex').slice(0, 32)}`;
}

/** True for a key made by {@link accountKey} (and of the account+address form) or {@link functionKey}. */
export function isAccountKey(key: string): boolean {
  return key.startsWith(ACCOUNT_PREFIX) || key.startsWith(KEY_PREFIX);
}

/** An operator's text for an account key (`acct:alice`, `acct:alice|203.0.113.7`) or a function's (`key:…`), as an identity. */
export function identifyAccount(text: string): ClientIdentity | undefined {
  if (!isAccountKey(text) || text.length > 200 || /[\s\u0000-\u001f]/.test(text)) return undefined;
  return { ip: text, key: text };
}
