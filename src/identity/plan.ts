/** A tenant judged by another of the config's plans, for tokens whose plan claim picks one. */
import type { Snapshot, TenantView } from "../gateway/snapshot.ts";

const views = new WeakMap<TenantView, Map<string, TenantView>>();

/**
 * `tenant` with `plan`'s rules, limits, quota and concurrency in place of its own plan's, its own
 * additions kept. Built once per tenant view and plan: a snapshot swap starts over with new views.
 * Counters stay the tenant's (its uid): a limit of the same name on both plans counts in one window.
 */
export function tenantOnPlan(snapshot: Snapshot, tenant: TenantView, plan: string): TenantView | undefined {
  if (plan === tenant.plan) return tenant;
  const p = snapshot.plans.get(plan);
  if (!p) return undefined;
  let byPlan = views.get(tenant);
  if (!byPlan) {
    byPlan = new Map();
    views.set(tenant, byPlan);
  }
  let view = byPlan.get(plan);
  if (!view) {
    const own = tenant.own;
    view = {
      ...tenant,
      plan,
      rules: [...p.rules, ...own.rules],
      limits: [...p.limits, ...own.limits],
      quotas: [...p.quotas, ...own.quotas],
      concurrency: own.concurrency ?? p.concurrency,
      billFailures: p.billFailures,
    };
    byPlan.set(plan, view);
  }
  return view;
}
