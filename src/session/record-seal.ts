import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { types } from 'node:util';
import { deriveKeys } from './secret-keys.js';

const CIPHER = 'aes-256-gcm';
// NIST SP 800-38D §8.2.2: a random 96-bit IV per message; far below 2^32 seals per key in practice.
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals store records at rest (AES-256-GCM) and hashes the values sessions are looked up by
 * (HMAC-SHA-256), with keys derived from SESSION_SECRET's list: the first secret seals and hashes
 * new records, every secret opens and finds existing ones (rotation, as for the cookie).
 */
export class RecordSeal {
  private readonly sealKeys: readonly Buffer[];
  private readonly indexKeys: readonly Buffer[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('RecordSeal needs at least one secret (SESSION_SECRET)');
    this.sealKeys = deriveKeys(secrets, 'storeSeal');
    this.indexKeys = deriveKeys(secrets, 'storeIndex');
  }

  /**
   * `associatedData` names where the sealed value belongs (its store key): the same bytes under
   * another name do not open.
   */
  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(CIPHER, this.current(this.sealKeys), iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The plaintext, or undefined when no configured secret opens it under `associatedData`. */
  open(sealed: string, associatedData: string): string | undefined {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) return undefined;
    const iv = raw.subarray(0, IV_BYTES);
    const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    for (const key of this.sealKeys) {
      const plaintext = openWith(key, iv, body, tag, associatedData);
      if (plaintext !== undefined) return plaintext;
    }
    return undefined;
  }

  /** The keyed hash (hex) a new record is indexed by. */
  lookupHash(value: string): string {
    return hmac(this.current(this.indexKeys), value);
  }

  /** The keyed hash under every configured secret: records indexed before a rotation are found too. */
  lookupHashes(value: string): string[] {
    return [...new Set(this.indexKeys.map((key) => hmac(key, value)))];
  }

  private current(keys: readonly Buffer[]): Buffer {
    const [first] = keys;
    if (first === undefined) throw new Error('RecordSeal has no keys');
    return first;
  }
}

function openWith(key: Buffer, iv: Buffer, body: Buffer, tag: Buffer, associatedData: string): string | undefined {
  const decipher = createDecipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch (error) {
    // final() throws exactly when the tag does not verify: another key, another name, or tampering
    if (types.isNativeError(error) && error.message.includes('unable to authenticate')) return undefined;
    throw error;
  }
}

function hmac(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value, 'utf8').digest('hex');
}
