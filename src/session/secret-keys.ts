import { hkdfSync } from 'node:crypto';

/**
 * What a key derived from SESSION_SECRET is for. Each purpose has its own HKDF label (RFC 5869
 * `info`), so a key serves one purpose only: knowing the cookie key says nothing about the key
 * that seals store records, and the reverse.
 */
export const KEY_PURPOSES = {
  /** Seals the session cookie (@fastify/secure-session). */
  cookie: 'session-cookie-v1',
  /** Seals session records at rest in the store (AES-256-GCM). */
  storeSeal: 'session-store-seal-v1',
  /** Keys the HMAC of the lookup values (sub, provider sid) the store indexes sessions by. */
  storeIndex: 'session-store-index-v1',
} as const;

export type KeyPurpose = keyof typeof KEY_PURPOSES;

const SALT = 'bff-gateway';
const KEY_BYTES = 32;

/**
 * One 32-byte key per secret for `purpose` (HKDF-SHA256), in the order of the secrets: the first
 * seals, all open (rotation). Derived once at start-up, never per request.
 */
export function deriveKeys(secrets: readonly string[], purpose: KeyPurpose): Buffer[] {
  return secrets.map((secret) => Buffer.from(hkdfSync('sha256', secret, SALT, KEY_PURPOSES[purpose], KEY_BYTES)));
}
