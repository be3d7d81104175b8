/**
 * A request's limits and quotas in the order every decision walks them (the tenant's, then the
 * key's), and what explain shows of each: the same whether the counts live in this process or in
 * Redis (cluster/redis/shared-limits.ts), which only differ in how full each one is.
 */
import type { RefusalCode } from "../../gateway/refusal.ts";
import type { CompiledLimit, CompiledQuota, KeyView, TenantView } from "../../gateway/snapshot.ts";
import type { CounterState } from "./policy.ts";
import { capOf } from "./sliding-windows.ts";

/** The tenant's limits (plan's and own), then the key's own. */
export const limitAt = (tenant: TenantView, key: KeyView, i: number): CompiledLimit =>
  i < tenant.limits.length ? tenant.limits[i]! : key.limits[i - tenant.limits.length]!;

/** The tenant's quotas (plan's and own), then the key's own. */
export const quotaAt = (tenant: TenantView, key: KeyView, j: number): CompiledQuota =>
  j < tenant.quotas.length ? tenant.quotas[j]! : key.quotas[j - tenant.quotas.length]!;

export interface StatesInput {
  tenant: TenantView;
  key: KeyView;
  cost: number;
  now: number;
  /** Whether the request as a whole would be admitted. */
  admitted: boolean;
  /** Per limit, then per quota: whether it alone would refuse the request. */
  refusing: readonly boolean[];
  /** The i-th window's count. */
  used(i: number): number;
  /** In how many ms `cost` more would fit in the i-th window under `cap` (0: now); asked only when cost ≤ cap. */
  fitsInMs(i: number, cap: number): number;
  /** The j-th quota's count and the end of its current period. */
  quota(j: number): { used: number; periodEnd: number };
}

export function counterStates(o: StatesInput): { states: CounterState[]; wouldRefuse: RefusalCode[] } {
  const { tenant, key, cost, now, admitted, refusing } = o;
  const states: CounterState[] = [];
  const wouldRefuse: RefusalCode[] = [];
  const nl = tenant.limits.length + key.limits.length;
  for (let i = 0; i < nl; i++) {
    const limit = limitAt(tenant, key, i);
    const cap = capOf(limit);
    const used = o.used(i);
    const fits = cost > cap ? null : o.fitsInMs(i, cap);
    if (admitted && limit.shadow && refusing[i] && !wouldRefuse.includes("rate_limited")) {
      wouldRefuse.push("rate_limited");
    }
    states.push({
      kind: "window",
      name: limit.name,
      declaredAt: limit.declaredAt,
      limit: limit.limit,
      per: limit.windowMs,
      by: i >= tenant.limits.length ? "key" : limit.by,
      mode: limit.shadow ? "shadow" : "enforce",
      used,
      adds: admitted && !(limit.shadow && refusing[i]) ? cost : 0,
      refuses: fits !== 0,
      fitsInMs: fits,
      resetsAt: null,
    });
  }
  for (let j = 0; j < tenant.quotas.length + key.quotas.length; j++) {
    const q = quotaAt(tenant, key, j);
    const { used, periodEnd } = o.quota(j);
    const fits = cost > q.limit ? null : used + cost > q.limit ? periodEnd - now : 0;
    if (admitted && q.shadow && refusing[nl + j] && !wouldRefuse.includes("quota_exhausted")) {
      wouldRefuse.push("quota_exhausted");
    }
    states.push({
      kind: "quota",
      name: q.name,
      declaredAt: q.declaredAt,
      limit: q.limit,
      per: q.period,
      by: j >= tenant.quotas.length ? "key" : q.by,
      mode: q.shadow ? "shadow" : "enforce",
      used,
      adds: admitted && !(q.shadow && refusing[nl + j]) ? cost : 0,
      refuses: fits !== 0,
      fitsInMs: fits,
      resetsAt: periodEnd,
    });
  }
  return { states, wouldRefuse };
}
