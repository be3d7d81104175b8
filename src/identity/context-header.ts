/**
 * X-Gatehouse-Context, for upstreams that set `tenantContext: true`: the tenant's metadata and the
 * token's forwarded claims as one line of JSON, so the upstream needs no second lookup. It is ASCII
 * (other characters are \u-escaped) and at most MAX_CONTEXT bytes: when the claims do not fit they
 * are left out, then the metadata, and `"truncated": true` says so.
 */
import type { RequestContext } from "../policies/policy.ts";

export const CONTEXT_HEADER = "x-gatehouse-context";
export const MAX_CONTEXT = 4096;

export function tenantContext(ctx: RequestContext): string {
  const tenant = ctx.tenant!;
  const base = { tenant: tenant.id, plan: tenant.plan, subject: ctx.key!.id };
  const claims = ctx.identity?.claims;
  const full = ascii(JSON.stringify({ ...base, metadata: tenant.metadata, ...(claims ? { claims } : {}) }));
  if (full.length <= MAX_CONTEXT) return full;
  const noClaims = ascii(JSON.stringify({ ...base, metadata: tenant.metadata, truncated: true }));
  if (noClaims.length <= MAX_CONTEXT) return noClaims;
  return ascii(JSON.stringify({ ...base, truncated: true }));
}

const ascii = (json: string) =>
  json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
