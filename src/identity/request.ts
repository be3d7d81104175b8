/** What identity resolution records on a request, for the policies, the proxy and explain. */
import type { NamedTenant } from "./namers.ts";

export interface RequestIdentity {
  /** Tenants the request names (subdomain, path prefix, header); the proven tenant must be each. */
  readonly named: readonly NamedTenant[];
  /** The credential source that proved the tenant: `apiKey`, or a jwt source's name. */
  source?: string;
  /** Scopes the token carries, for rules with `scope:`. */
  scopes?: ReadonlySet<string>;
  /** The token's forwarded claims, for X-Gatehouse-Context. */
  claims?: Readonly<Record<string, unknown>> | null;
}
