import { acceptedIssuers, tenantProblem } from './issuer.js';

const TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';
const COMMON = 'https://login.microsoftonline.com/common/v2.0';

describe('acceptedIssuers', () => {
  it('accepts exactly the configured issuer, trailing slash included', () => {
    expect(acceptedIssuers('https://t.auth0.com/', 'https://t.auth0.com/', [])).toEqual(new Map([['https://t.auth0.com/', undefined]]));
    expect(acceptedIssuers('https://t.auth0.com', 'https://t.auth0.com/', [])).toEqual(expect.stringContaining('names issuer https://t.auth0.com,'));
  });

  it('turns a {tenantid} template into one issuer per allowed tenant', () => {
    expect(acceptedIssuers(TEMPLATE, COMMON, ['t1', 't2'])).toEqual(
      new Map([
        ['https://login.microsoftonline.com/t1/v2.0', 't1'],
        ['https://login.microsoftonline.com/t2/v2.0', 't2'],
      ]),
    );
  });

  it('refuses a template without allowed tenants, or one that does not match the configured issuer', () => {
    expect(acceptedIssuers(TEMPLATE, COMMON, [])).toEqual(expect.stringContaining('OIDC_ALLOWED_TENANTS'));
    expect(acceptedIssuers(TEMPLATE, 'https://login.microsoftonline.com/common/v1.0', ['t1'])).toEqual(expect.stringContaining('does not match'));
    expect(acceptedIssuers(TEMPLATE, 'https://evil.example/common/v2.0', ['t1'])).toEqual(expect.stringContaining('does not match'));
  });
});

describe('tenantProblem', () => {
  const issuers = new Map([['https://login.microsoftonline.com/t1/v2.0', 't1'], ['https://op.example', undefined]]);
  it('requires tid to name the issuer\'s tenant for a template issuer only', () => {
    expect(tenantProblem(issuers, 'https://login.microsoftonline.com/t1/v2.0', 't1')).toBeUndefined();
    expect(tenantProblem(issuers, 'https://login.microsoftonline.com/t1/v2.0', 't2')).toBeDefined();
    expect(tenantProblem(issuers, 'https://login.microsoftonline.com/t1/v2.0', undefined)).toBeDefined();
    expect(tenantProblem(issuers, 'https://op.example', undefined)).toBeUndefined();
  });
});
