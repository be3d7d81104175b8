/**
 * Whether a name a request gives (a subdomain, a path prefix, a header, a `:tenant` segment, a query
 * parameter) is the tenant its credential proved: its id or one of its external ids. Host names are
 * compared without case, as DNS compares them; everything else exactly.
 */
import type { TenantView } from "../gateway/snapshot.ts";
import type { NamedTenant } from "./namers.ts";

export function namesTenant(value: string, tenant: TenantView, caseless = false): boolean {
  if (!caseless) return value === tenant.id || tenant.externalIds.includes(value);
  const v = value.toLowerCase();
  return v === tenant.id.toLowerCase() || tenant.externalIds.some((x) => x.toLowerCase() === v);
}

/** Every tenant the request names is the proven one (trivially so when it names none). */
export function agrees(named: readonly NamedTenant[] | undefined, tenant: TenantView): boolean {
  if (!named) return true;
  for (const n of named) if (!namesTenant(n.value, tenant, n.source === "subdomain")) return false;
  return true;
}
