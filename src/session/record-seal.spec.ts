import { hkdfSync } from 'node:crypto';
import { RecordSeal } from './record-seal.js';
import { deriveKeys } from './secret-keys.js';

const OLD = 'old-session-secret-0123456789abcdef';
const NEW = 'new-session-secret-0123456789abcdef';

describe('RecordSeal', () => {
  it('opens what it sealed under the same associated data, and the sealed text does not contain the plaintext', () => {
    const seal = new RecordSeal([NEW]);
    const sealed = seal.seal('{"refreshToken":"rt-secret"}', 'record-a');

    expect(sealed).not.toContain('rt-secret');
    expect(seal.open(sealed, 'record-a')).toBe('{"refreshToken":"rt-secret"}');
  });

  it('seals the same plaintext differently every time (random IV)', () => {
    const seal = new RecordSeal([NEW]);
    expect(seal.seal('same', 'a')).not.toBe(seal.seal('same', 'a'));
  });

  it('does not open under other associated data (a record copied under another key)', () => {
    const seal = new RecordSeal([NEW]);
    expect(seal.open(seal.seal('payload', 'record-a'), 'record-b')).toBeUndefined();
  });

  it('does not open a tampered value, nor values too short or not base64url', () => {
    const seal = new RecordSeal([NEW]);
    const sealed = Buffer.from(seal.seal('payload', 'a'), 'base64url');
    sealed[14] = (sealed[14] ?? 0) ^ 1;

    expect(seal.open(sealed.toString('base64url'), 'a')).toBeUndefined();
    expect(seal.open('', 'a')).toBeUndefined();
    expect(seal.open('short', 'a')).toBeUndefined();
    expect(seal.open('!!! not base64 !!!'.repeat(4), 'a')).toBeUndefined();
  });

  it('rotates: the first secret seals, every secret opens, a removed secret no longer opens', () => {
    const sealedWithOld = new RecordSeal([OLD]).seal('payload', 'a');
    const rotated = new RecordSeal([NEW, OLD]);

    expect(rotated.open(sealedWithOld, 'a')).toBe('payload');
    expect(new RecordSeal([OLD]).open(rotated.seal('payload', 'a'), 'a')).toBeUndefined();
    expect(new RecordSeal([NEW]).open(sealedWithOld, 'a')).toBeUndefined();
  });

  it('hashes lookup values with the first secret, and under every secret for lookups', () => {
    const old = new RecordSeal([OLD]);
    const rotated = new RecordSeal([NEW, OLD]);

    expect(rotated.lookupHash('alice')).toMatch(/^[0-9a-f]{64}$/);
    expect(rotated.lookupHash('alice')).not.toBe(old.lookupHash('alice'));
    expect(rotated.lookupHash('alice')).not.toBe(rotated.lookupHash('bob'));
    expect(rotated.lookupHashes('alice')).toEqual([rotated.lookupHash('alice'), old.lookupHash('alice')]);
  });

  it('refuses an empty secret list', () => {
    expect(() => new RecordSeal([])).toThrow('SESSION_SECRET');
  });
});

describe('deriveKeys', () => {
  it('derives a distinct 32-byte key per purpose from the same secret', () => {
    const keys = (['cookie', 'storeSeal', 'storeIndex'] as const).map((purpose) => deriveKeys([NEW], purpose)[0]?.toString('hex'));

    expect(new Set(keys).size).toBe(3);
    for (const key of keys) expect(key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('derives the cookie key as earlier releases did, so existing cookies still open', () => {
    const earlier = Buffer.from(hkdfSync('sha256', NEW, 'bff-gateway', 'session-cookie-v1', 32));
    expect(deriveKeys([NEW, OLD], 'cookie')[0]).toEqual(earlier);
  });
});
