/** The tenant and key views of the snapshot in force, found by id for the control API. */
import type { KeyView, Snapshot, TenantView } from "../gateway/snapshot.ts";
import { notFound } from "./problem.ts";

export function tenantViewOf(snapshot: Snapshot, id: string): TenantView {
  const tenant = snapshot.tenants.get(id);
  if (!tenant) throw notFound(`No tenant with id "${id}".`);
  return tenant;
}

/** A key and its tenant. Keys are mapped by hash; this scans them, which a control-API call can afford. */
export function keyViewOf(snapshot: Snapshot, id: string): { key: KeyView; tenant: TenantView } {
  let key: KeyView | undefined;
  for (const k of snapshot.keysByHash.values()) {
    // During a grace period the key appears twice; the current secret's view has no graceUntil.
    if (k.id === id && (key === undefined || k.graceUntil === null)) key = k;
  }
  const tenant = key && snapshot.tenants.get(key.tenantId);
  if (!key || !tenant) throw notFound(`No key with id "${id}".`);
  return { key, tenant };
}
