/**
 * Plans as declared and the policies in force for a tenant or a key, read from the snapshot the data
 * plane serves, so what is shown is what is applied. Knows nothing of HTTP.
 */
import type { Static } from "@sinclair/typebox";
import { eq } from "drizzle-orm";
import { formatDuration } from "../../config/units.ts";
import type { TenantPolicies } from "../../db/declarations.ts";
import { tenants } from "../../db/schema.ts";
import type {
  CompiledLimit,
  CompiledQuota,
  CompiledRule,
  KeyView,
  TenantView,
} from "../../gateway/snapshot.ts";
import { originOf, type Source, sourceLocator } from "../declared-source.ts";
import { keyViewOf, tenantViewOf } from "../snapshot-views.ts";
import type { AdminStore } from "../store.ts";
import type { EffectivePolicy, PolicyLimit, PolicyQuota, PolicyRule } from "./model.ts";

type Locate = (declaredAt: string) => Source;

export class PolicyService {
  constructor(private readonly store: AdminStore) {}

  forTenant(id: string): Static<typeof EffectivePolicy> {
    return this.effective(tenantViewOf(this.store.state.snapshot, id), null);
  }

  forKey(id: string): Static<typeof EffectivePolicy> {
    const { tenant, key } = keyViewOf(this.store.state.snapshot, id);
    return this.effective(tenant, key);
  }

  private effective(tenant: TenantView, key: KeyView | null): Static<typeof EffectivePolicy> {
    const locate = sourceLocator(this.store);
    // Limits a key declares always count per key, whatever their own `by` says (as the data plane does).
    const keyLimits = (key?.limits ?? []).map((l) => ({ ...limitItem(l, locate), by: "key" as const }));
    return {
      tenant: tenant.id,
      key: key?.id ?? null,
      plan: tenant.plan,
      limits: [...tenant.limits.map((l) => limitItem(l, locate)), ...keyLimits],
      quotas: [...tenant.quotas, ...(key?.quotas ?? [])].map((q) => quotaItem(q, locate)),
      rules: [...tenant.rules, ...(key?.rules ?? [])].map((r) => ruleItem(r, locate)),
      concurrency: this.concurrency(tenant, locate),
    };
  }

  /** The snapshot keeps the cap, not who set it: the tenant's own when its row has one, else the plan's. */
  private concurrency(tenant: TenantView, locate: Locate) {
    if (tenant.concurrency === null) return null;
    const row = this.store.database.db
      .select({ policies: tenants.policies })
      .from(tenants)
      .where(eq(tenants.id, tenant.id))
      .get();
    const own = row ? (JSON.parse(row.policies) as TenantPolicies).concurrency : undefined;
    const declaredAt =
      own !== undefined ? `tenants.${tenant.id}.concurrency` : `plans.${tenant.plan}.concurrency`;
    return {
      limit: tenant.concurrency,
      origin: originOf(declaredAt),
      declaredAt,
      source: locate(declaredAt),
    };
  }
}

export function limitItem(l: CompiledLimit, locate: Locate): Static<typeof PolicyLimit> {
  return {
    name: l.name,
    limit: l.limit,
    window: formatDuration(l.windowMs),
    by: l.by,
    origin: originOf(l.declaredAt),
    declaredAt: l.declaredAt,
    source: locate(l.declaredAt),
  };
}

export function quotaItem(q: CompiledQuota, locate: Locate): Static<typeof PolicyQuota> {
  return {
    name: q.name,
    limit: q.limit,
    period: q.period,
    anchor: q.anchor,
    timezone: q.timezone,
    by: q.by,
    origin: originOf(q.declaredAt),
    declaredAt: q.declaredAt,
    source: locate(q.declaredAt),
  };
}

export function ruleItem(r: CompiledRule, locate: Locate): Static<typeof PolicyRule> {
  return {
    effect: r.effect,
    pattern: r.pattern.text,
    origin: originOf(r.declaredAt),
    declaredAt: r.declaredAt,
    source: locate(r.declaredAt),
  };
}
