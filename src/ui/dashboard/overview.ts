/**
 * The dashboard's first page in one answer: every tenant with its request rate over the last five
 * whole minutes (minute rollups), its refusals by type since the gateway started (the data plane's
 * own counters: usage rows would mean scanning every raw row), and each quota it shares with its
 * burn-down projected to the period's end.
 */

import type { SharedQuotaCounts } from "../../admin/quota/service.ts";
import type { TenantView } from "../../gateway/snapshot.ts";
import type { GatewayState } from "../../gateway/state.ts";
import type { Clock } from "../../lib/clock.ts";
import { CODES, type Metrics } from "../../metrics/index.ts";
import type { QuotaCounters } from "../../policies/limits/quota-counters.ts";
import type { UsageReads } from "../../usage/service.ts";
import { projectedUse } from "../projection.ts";

const MINUTE = 60_000;
/** The rate is averaged over this many whole minutes before now. */
export const RATE_MINUTES = 5;

export interface QuotaBurn {
  name: string;
  limit: number;
  used: number;
  periodStart: string;
  resetsAt: string;
  /** The count at resetsAt at the pace so far; null early in a period. */
  projected: number | null;
}

export interface TenantOverview {
  id: string;
  name: string;
  plan: string;
  disabled: boolean;
  /** Requests and errors in the last RATE_MINUTES whole minutes, and requests per second over them. */
  recent: { requests: number; errors: number; perSecond: number } | null;
  /** Refusals by problem type (rate_limited, quota_exhausted, forbidden, ...) since `refusalsSince`. */
  refusals: Record<string, number>;
  quotas: QuotaBurn[];
}

export interface Overview {
  now: string;
  rateWindow: { from: string; to: string };
  refusalsSince: string;
  tenants: TenantOverview[];
}

export interface OverviewDeps {
  state: GatewayState;
  clock: Clock;
  metrics: Metrics;
  /** When the data plane's counters started. */
  startedAt: number;
  usage?: UsageReads;
  /** The data plane's own counters; read directly (not through QuotaService, which also locates each
   * quota's line in the file: a re-read per tenant). */
  quotas?: QuotaCounters;
  /** Cluster mode: the quota counts all nodes share in Redis, read into `quotas` first. */
  sharedQuotas?: SharedQuotaCounts;
}

export async function overview(deps: OverviewDeps): Promise<Overview> {
  const now = deps.clock.now();
  const to = Math.floor(now / MINUTE) * MINUTE;
  const from = to - RATE_MINUTES * MINUTE;
  // Every tenant's rate is asked at once: in cluster mode each is a PostgreSQL query.
  const tenants: TenantOverview[] = await Promise.all(
    [...deps.state.snapshot.tenants.values()].map(async (t) => ({
      id: t.id,
      name: t.name,
      plan: t.plan,
      disabled: t.disabled,
      recent: deps.usage ? await recent(deps.usage, t.id, from, to) : null,
      refusals: refusalsOf(deps.metrics, t.id),
      quotas: deps.quotas ? await burns(deps.quotas, t, now, deps.sharedQuotas) : [],
    })),
  );
  tenants.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    now: new Date(now).toISOString(),
    rateWindow: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    refusalsSince: new Date(deps.startedAt).toISOString(),
    tenants,
  };
}

async function recent(usage: UsageReads, tenant: string, from: number, to: number) {
  const { total } = await usage.queryUsage({ tenant, from, to, groupBy: "hour" });
  return {
    requests: total.requests,
    errors: total.errors,
    perSecond: total.requests / ((to - from) / 1000),
  };
}

function refusalsOf(metrics: Metrics, tenant: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const stats = metrics.stats.get(tenant);
  if (!stats) return counts;
  stats.refusals.forEach((n, i) => {
    if (n > 0) counts[CODES[i]!] = n;
  });
  return counts;
}

/** The quotas the tenant's keys share (as GET /tenants/{id}/quota shows them). */
async function burns(
  quotas: QuotaCounters,
  tenant: TenantView,
  now: number,
  shared: SharedQuotaCounts | undefined,
): Promise<QuotaBurn[]> {
  const counted = tenant.quotas
    .filter((quota) => quota.by === "tenant")
    .map((quota) => ({ quota, counter: quotas.counter(quota, tenant.uid, now) }));
  // While Redis cannot answer, the page shows this node's copy: the counts it last saw.
  if (shared && counted.length > 0) await shared.read(tenant, null, counted);
  return counted.map(({ quota: q, counter: c }) => {
    return {
      name: q.name,
      limit: q.limit,
      used: c.used,
      periodStart: new Date(c.periodStart).toISOString(),
      resetsAt: new Date(c.periodEnd).toISOString(),
      projected: projectedUse({ used: c.used, periodStart: c.periodStart, resetsAt: c.periodEnd, now }),
    };
  });
}
