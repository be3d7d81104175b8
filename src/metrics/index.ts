/**
 * Metrics for the data plane, counted where they happen and rendered elsewhere.
 *
 * Label cardinality is bounded by construction: `tenant` is a tenant id (at most `maxTenants`
 * distinct values, then "_other"; "_none" before authentication), `outcome` one of five classes,
 * `status_class` one of 1xx-5xx, and `code` one of the closed list of refusal codes.
 *
 * `observe` runs once per request, so it only bumps numbers in per-tenant typed arrays; prom-client,
 * whose labelled inc/observe hash a label object on every call (about 1 µs per request for the three
 * metrics), is fed from those arrays when /metrics is scraped (registry.ts), which is loaded with the
 * control API on its first request rather than at start-up.
 */
import { type RefusalCode, refusalCodes } from "../gateway/refusal.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";

export interface Metrics {
  /** Everything counted so far, by `tenant` label value. */
  readonly stats: ReadonlyMap<string, TenantStats>;
  /** The data plane's observe hook: once per request, when it has ended. */
  observe(ctx: RequestContext, outcome: RequestOutcome): void;
}

export const OUTCOMES = ["ok", "rejected", "upstream_error", "client_aborted", "other"] as const;
const OTHER_OUTCOME = OUTCOMES.length - 1;
const REJECTED = 1;
const outcomeIndex = new Map<string, number>(OUTCOMES.slice(0, OTHER_OUTCOME).map((o, i) => [o, i]));

export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] as const;

export const CODES = [...(Object.keys(refusalCodes) as RefusalCode[]), "other"] as const;
const codeIndex = new Map<string, number>(CODES.map((c, i) => [c, i]));
const OTHER_CODE = CODES.length - 1;

export const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Everything counted for one `tenant` label value. Zero entries are never exported. */
export class TenantStats {
  /** [outcome class × status class] → requests. */
  readonly requests = new Float64Array(OUTCOMES.length * STATUS_CLASSES.length);
  /** [code] → refusals. */
  readonly refusals = new Float64Array(CODES.length);
  /** [outcome class × bucket] → observations in that bucket alone (cumulated when exported). */
  readonly buckets = new Float64Array(OUTCOMES.length * BUCKETS.length);
  readonly sum = new Float64Array(OUTCOMES.length);
  readonly count = new Float64Array(OUTCOMES.length);
}

export function createMetrics(options: { maxTenants?: number } = {}): Metrics {
  const maxTenants = options.maxTenants ?? 1000;
  /** By label value. */
  const stats = new Map<string, TenantStats>();
  /** By tenant id: the first `maxTenants` ids seen keep a label of their own. */
  const byTenant = new Map<string, TenantStats>();
  const labelled = (label: string): TenantStats => {
    let s = stats.get(label);
    if (s === undefined) {
      s = new TenantStats();
      stats.set(label, s);
    }
    return s;
  };
  const statsOf = (id: string | undefined): TenantStats => {
    if (id === undefined) return labelled("_none");
    let s = byTenant.get(id);
    if (s !== undefined) return s;
    if (byTenant.size >= maxTenants) return labelled("_other");
    s = labelled(id);
    byTenant.set(id, s);
    return s;
  };

  return {
    stats,
    observe(ctx, outcome) {
      const s = statsOf(ctx.tenant?.id);
      const [head, code] = outcome.outcome.split(":", 2) as [string, string | undefined];
      const cls = outcomeIndex.get(head) ?? OTHER_OUTCOME;
      s.requests[cls * STATUS_CLASSES.length + statusClass(outcome.status)]!++;
      if (cls === REJECTED)
        s.refusals[(code === undefined ? undefined : codeIndex.get(code)) ?? OTHER_CODE]!++;
      const seconds = Math.max(0, outcome.endedAt - ctx.startedAt) / 1000;
      // As prom-client does: the first bucket whose bound is ≥ the value; above the last, only +Inf.
      let b = 0;
      while (b < BUCKETS.length && seconds > BUCKETS[b]!) b++;
      if (b < BUCKETS.length) s.buckets[cls * BUCKETS.length + b]!++;
      s.sum[cls]! += seconds;
      s.count[cls]!++;
    },
  };
}

/** 1xx..5xx as 0..4, anything else 5 ("other"). */
function statusClass(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : STATUS_CLASSES.length - 1;
}
