/**
 * Tenant-scoped routes: a route's `:tenant` segment, and the query parameter or header its
 * `tenantIn` names, must name the authenticated tenant. Otherwise the answer is the very 404 of a
 * path no route matches, so another tenant's resources look exactly like ones that do not exist.
 */
import { Refusal } from "../gateway/refusal.ts";
import type { Policy, RequestContext } from "../policies/policy.ts";
import { namesTenant } from "./agree.ts";
import { headerValues } from "./namers.ts";

/** Word for word the route policy's: the two answers must not be told apart. */
export const NOT_FOUND = "No route matches this method and path.";

export function createTenantScopePolicy(): Policy {
  return {
    name: "tenant-scope",
    check(ctx: RequestContext) {
      const route = ctx.route;
      const tenant = ctx.tenant;
      if (!route || !tenant || (route.tenantSegment < 0 && route.tenantIn === null)) return undefined;
      return outOfScope(ctx) ? new Refusal("not_found", NOT_FOUND) : undefined;
    },
  };
}

/** Why the request reaches beyond its tenant, or null when it does not. */
export function outOfScope(ctx: RequestContext): string | null {
  const route = ctx.route!;
  const tenant = ctx.tenant!;
  if (route.tenantSegment >= 0) {
    const raw = ctx.segments[route.tenantSegment]!;
    if (!namesTenant(raw.includes("%") ? decodeURIComponent(raw) : raw, tenant)) {
      return "the path's :tenant segment names another tenant";
    }
  }
  const { query, header } = route.tenantIn ?? {};
  if (query) {
    const values = queryValues(ctx.query ?? "", query);
    if (values.length === 0) return `the query parameter ${query} is missing`;
    if (!values.every((v) => namesTenant(v, tenant)))
      return `the query parameter ${query} names another tenant`;
  }
  if (header) {
    const values = headerValues(ctx.headers, header);
    if (values.length === 0) return `the header ${header} is missing`;
    if (!values.every((v) => namesTenant(v, tenant))) return `the header ${header} names another tenant`;
  }
  return null;
}

/**
 * Every value of parameter `name` as some upstream could read it: names are decoded and compared
 * without case, and PHP's `name[]` and `name[x]` count too, so no spelling slips another tenant in.
 */
export function queryValues(query: string, name: string): string[] {
  if (query === "") return [];
  const want = name.toLowerCase();
  const out: string[] = [];
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    const key = formDecode(eq < 0 ? part : part.slice(0, eq))
      .toLowerCase()
      .replace(/\[[^\]]*\]$/, "");
    if (key === want) out.push(eq < 0 ? "" : formDecode(part.slice(eq + 1)));
  }
  return out;
}

function formDecode(s: string): string {
  if (!s.includes("%") && !s.includes("+")) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    // Undecodable: it cannot equal a tenant name, so it counts as naming another tenant.
    return `\0${s}`;
  }
}
