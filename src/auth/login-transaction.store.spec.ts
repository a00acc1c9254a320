import { LOGIN_TRANSACTION_TTL_MS, storeTransaction, takeTransaction, type LoginTransaction, type TransactionCookie } from './login-transaction.store.js';

const NOW = 1_700_000_000_000;

/** The cookie's get/set, as secure-session offers them (values are copied, as sealing would). */
function cookie(initial?: unknown): TransactionCookie & { value: unknown } {
  const jar = {
    value: initial,
    get: () => structuredClone(jar.value),
    set: (_key: 'login', value: unknown) => {
      jar.value = structuredClone(value);
    },
  };
  return jar;
}

function transaction(state: string, createdAt = NOW): LoginTransaction {
  return { state, nonce: `nonce-${state}`, codeVerifier: `verifier-${state}`, returnTo: '/', createdAt };
}

describe('the login transaction in the session cookie', () => {
  it('gives back the transaction its state names, once', () => {
    const jar = cookie();
    storeTransaction(jar, transaction('a'), NOW);
    expect(takeTransaction(jar, 'a', NOW + 1000)).toEqual(transaction('a'));
    expect(() => takeTransaction(jar, 'a', NOW + 1000)).toThrow(expect.objectContaining({ code: 'login_state_mismatch' }));
  });

  it('keeps three parallel logins (tabs), dropping the oldest beyond that', () => {
    const jar = cookie();
    for (const state of ['a', 'b', 'c', 'd']) storeTransaction(jar, transaction(state), NOW);
    expect(() => takeTransaction(jar, 'a', NOW)).toThrow(expect.objectContaining({ code: 'login_state_mismatch' }));
    expect(takeTransaction(jar, 'c', NOW).state).toBe('c');
    expect(takeTransaction(jar, 'b', NOW).state).toBe('b');
    expect(takeTransaction(jar, 'd', NOW).state).toBe('d');
  });

  it('refuses a transaction older than the login time limit', () => {
    const jar = cookie();
    storeTransaction(jar, transaction('a'), NOW);
    expect(() => takeTransaction(jar, 'a', NOW + LOGIN_TRANSACTION_TTL_MS)).toThrow(expect.objectContaining({ code: 'login_state_mismatch' }));
  });

  it('consumes the matching transaction even when the state matches nothing else, and treats a malformed cookie as empty', () => {
    const jar = cookie([{ state: 'x' }, 'garbage']);
    expect(() => takeTransaction(jar, 'x', NOW)).toThrow(expect.objectContaining({ code: 'login_state_mismatch' }));
    expect(jar.value).toEqual([]);
    storeTransaction(jar, transaction('a'), NOW);
    expect(jar.value).toEqual([transaction('a')]);
  });
});
