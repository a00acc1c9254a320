/** Entra ID's multi-tenant discovery documents name their issuer with this placeholder. */
export const TENANT_PLACEHOLDER = '{tenantid}';

/**
 * The issuers tokens and authorization responses may name, each with the tenant it stands for
 * (undefined for an ordinary provider: exactly one issuer, compared character for character).
 */
export type AcceptedIssuers = ReadonlyMap<string, string | undefined>;

/**
 * OIDC Discovery §4.3: the document's issuer must be the configured one. A `{tenantid}` template
 * (Entra ID's /common and /organizations) matches the configured URL with any one path segment in
 * the placeholder's place, and then stands for the allowed tenants only. Returns the problem, if any.
 */
export function acceptedIssuers(documentIssuer: string, configuredIssuer: string, allowedTenants: readonly string[]): AcceptedIssuers | string {
  if (!documentIssuer.includes(TENANT_PLACEHOLDER)) {
    return documentIssuer === configuredIssuer ? new Map([[documentIssuer, undefined]]) : `The discovery document names issuer ${documentIssuer}, not ${configuredIssuer}.`;
  }
  const pattern = new RegExp(`^${documentIssuer.split(TENANT_PLACEHOLDER).map(escapeRegExp).join('[^/]+')}$`);
  if (!pattern.test(configuredIssuer)) return `The discovery document's issuer template ${documentIssuer} does not match ${configuredIssuer}.`;
  if (allowedTenants.length === 0) return `The discovery document's issuer is the template ${documentIssuer}: set OIDC_ALLOWED_TENANTS to the tenants whose users may sign in.`;
  return new Map(allowedTenants.map((tenant) => [documentIssuer.replaceAll(TENANT_PLACEHOLDER, tenant), tenant]));
}

/**
 * For a template issuer, the token's `tid` must name the tenant its `iss` stands for (Microsoft
 * identity platform: validate the issuer against the token's tenant). Returns the problem, if any.
 */
export function tenantProblem(issuers: AcceptedIssuers, iss: unknown, tid: unknown): string | undefined {
  if (typeof iss !== 'string') return 'no issuer (iss)';
  const tenant = issuers.get(iss);
  if (tenant === undefined || tid === tenant) return undefined;
  return 'a tenant (tid) other than its issuer\'s';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
