/**
 * Stored tenants and keys as gateway.yaml would declare them. `gatehouse export` prints these, and a
 * sync compares a file declaration with a stored row through them, so "declared exactly as export
 * printed it" and "nothing changed" mean the same thing everywhere.
 */
import type { KeyDecl, LimitDecl, QuotaDecl, RuleDecl, TenantDecl } from "../config/schema.ts";
import type { apiKeys, tenants } from "./schema.ts";

/** The policies a tenant row adds to its plan's, stored as JSON in `policies`. */
export interface TenantPolicies {
  limits?: LimitDecl[];
  rules?: RuleDecl[];
  quota?: QuotaDecl;
  concurrency?: number;
}

export type TenantColumns = Pick<
  typeof tenants.$inferSelect,
  "name" | "plan" | "metadata" | "externalIds" | "upstreams" | "credentials" | "policies" | "disabled"
>;
export type KeyColumns = Pick<
  typeof apiKeys.$inferSelect,
  "id" | "name" | "metadata" | "hash" | "expiresAt" | "disabled" | "limits" | "rules" | "quota"
>;

/** The tenant as gateway.yaml would declare it (without keys); empty fields are left out. */
export function tenantDecl(row: TenantColumns): TenantDecl {
  const own = JSON.parse(row.policies) as TenantPolicies;
  const metadata = JSON.parse(row.metadata) as Record<string, string>;
  const upstreams = JSON.parse(row.upstreams) as Record<string, string>;
  const externalIds = JSON.parse(row.externalIds) as string[];
  const credentials = JSON.parse(row.credentials) as Record<string, string>;
  return {
    name: row.name,
    plan: row.plan,
    ...(Object.keys(metadata).length ? { metadata } : {}),
    ...(externalIds.length ? { externalIds } : {}),
    ...(Object.keys(upstreams).length ? { upstreams } : {}),
    ...(Object.keys(credentials).length ? { credentials } : {}),
    ...(own.limits?.length ? { limits: own.limits } : {}),
    ...(own.rules?.length ? { rules: own.rules } : {}),
    ...(own.quota ? { quota: own.quota } : {}),
    ...(own.concurrency !== undefined ? { concurrency: own.concurrency } : {}),
    ...(row.disabled ? { disabled: true } : {}),
  };
}

/** The key as gateway.yaml would declare it: by its hash, never a secret; empty fields are left out. */
export function keyDecl(k: KeyColumns): KeyDecl {
  const limits = JSON.parse(k.limits) as LimitDecl[];
  const rules = JSON.parse(k.rules) as RuleDecl[];
  const metadata = JSON.parse(k.metadata) as Record<string, string>;
  return {
    id: k.id,
    ...(k.name !== null ? { name: k.name } : {}),
    ...(Object.keys(metadata).length ? { metadata } : {}),
    // During a rotation's grace period the previous secret is not declared: the file has one hash per key.
    hash: k.hash,
    ...(k.expiresAt !== null ? { expires: new Date(k.expiresAt).toISOString() } : {}),
    ...(k.disabled ? { disabled: true } : {}),
    ...(limits.length ? { limits } : {}),
    ...(rules.length ? { rules } : {}),
    ...(k.quota !== null ? { quota: JSON.parse(k.quota) as QuotaDecl } : {}),
  };
}

const TENANT_FIELDS = [
  "name",
  "plan",
  "metadata",
  "externalIds",
  "upstreams",
  "credentials",
  "limits",
  "rules",
  "quota",
  "concurrency",
  "disabled",
] as const;

/** The gateway.yaml fields in which two tenant rows differ. */
export function tenantChanges(before: TenantColumns, after: TenantColumns): string[] {
  const a = tenantDecl(before);
  const b = tenantDecl(after);
  return TENANT_FIELDS.filter((f) => !Bun.deepEquals(a[f], b[f]));
}

/** The gateway.yaml fields in which two key rows differ; a different hash is a different `secret`. */
export function keyChanges(
  before: KeyColumns & { tenantId: string },
  after: KeyColumns & { tenantId: string },
): string[] {
  const a = keyDecl(before);
  const b = keyDecl(after);
  return [
    ...(before.tenantId !== after.tenantId ? ["tenant"] : []),
    ...(a.hash !== b.hash ? ["secret"] : []),
    ...(["name", "metadata", "expires", "disabled", "limits", "rules", "quota"] as const).filter(
      (f) => !Bun.deepEquals(a[f], b[f]),
    ),
  ];
}
