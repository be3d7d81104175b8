/** The identity parts of a snapshot: routes' tenancy settings and the tenant-by-name map. */
import type { RouteDecl } from "../config/schema.ts";
import { SnapshotError } from "../gateway/build-snapshot.ts";
import type { PathPattern } from "../gateway/pattern.ts";
import type { CompiledRoute, TenantView } from "../gateway/snapshot.ts";

export function compileRouteTenancy(
  r: RouteDecl,
  pattern: PathPattern,
): Pick<CompiledRoute, "identity" | "tenantIn" | "tenantSegment"> {
  return {
    identity: r.identity ? new Set(r.identity) : null,
    tenantIn: r.tenantIn
      ? {
          query: r.tenantIn.query ?? null,
          header: r.tenantIn.header?.toLowerCase().replaceAll("_", "-") ?? null,
        }
      : null,
    tenantSegment: pattern.segments.findIndex((s) => s.kind === "param" && s.name === "tenant"),
  };
}

/**
 * Every name a token may give a tenant by: its id and its external ids. One name, one tenant: the
 * config checks say so for the file, and this catches a clash the control API would make.
 */
export function tenantsByName(tenants: ReadonlyMap<string, TenantView>): Map<string, TenantView> {
  const byName = new Map<string, TenantView>(tenants);
  for (const t of tenants.values()) {
    for (const x of t.externalIds) {
      const other = byName.get(x);
      if (other !== undefined && other !== t) {
        throw new SnapshotError(
          other.id === x
            ? `tenant "${t.id}" has external id "${x}", which is tenant "${x}"'s id`
            : `tenants "${other.id}" and "${t.id}" both have external id "${x}"`,
        );
      }
      byName.set(x, t);
    }
  }
  return byName;
}
