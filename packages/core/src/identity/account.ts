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

/** True for a key made by {@link accountKey} (and of the account+address form). */
export function isAccountKey(key: string): boolean {
  return key.startsWith(ACCOUNT_PREFIX);
}

/** An operator's text for an account key (`acct:alice`, `acct:alice|203.0.113.7`), as an identity. */
export function identifyAccount(text: string): ClientIdentity | undefined {
  if (!isAccountKey(text) || text.length > 200 || /[\s\u0000-\u001f]/.test(text)) return undefined;
  return { ip: text, key: text };
}
