import type { IdTokenClaims } from './id-token.validator.js';
import { mergeUserinfo } from './userinfo-client.js';

const claims: IdTokenClaims = { iss: 'https://op.example', sub: 'u1', exp: 2, iat: 1, email: 'id@example.com' };

describe('mergeUserinfo', () => {
  it('adds the claims the ID token lacks and keeps the ID token\'s where both have one', () => {
    expect(mergeUserinfo(claims, { sub: 'u1', name: 'Ada', email: 'userinfo@example.com', picture: 'https://p.example/a.png' })).toEqual({
      ...claims,
      name: 'Ada',
      picture: 'https://p.example/a.png',
    });
  });

  it('never takes protocol claims from userinfo', () => {
    const merged = mergeUserinfo({ iss: 'https://op.example', sub: 'u1', exp: 2, iat: 1 }, { sub: 'u1', sid: 'forged', auth_time: 5, nonce: 'x' });
    expect(merged).toEqual({ iss: 'https://op.example', sub: 'u1', exp: 2, iat: 1 });
  });

  it('refuses an answer about another subject, or without one, with 502 userinfo_invalid', () => {
    for (const userinfo of [{ sub: 'u2' }, { name: 'no sub' }]) {
      expect(() => mergeUserinfo(claims, userinfo)).toThrow(expect.objectContaining({ status: 502, code: 'userinfo_invalid' }));
    }
  });
});
