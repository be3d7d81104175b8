/**
 * Rollups: per period (minute and hour), tenant and dimension, the totals of the usage rows in it.
 * One rollup per question the API answers (time, route, key, status) rather than one keyed by all of
 * them at once: the combined key multiplies (keys × routes × statuses) and barely compresses.
 */
import type { RollupDim } from "../db/schema.ts";
import { bucketOf } from "./histogram.ts";
import { isError, type UsageRow } from "./row.ts";
import { addFacts, addTotals, emptyTotals, type Totals } from "./totals.ts";

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
/** Coarsest first. */
export const GRAINS = [HOUR, MINUTE] as const;
export const DIMS: readonly RollupDim[] = ["all", "route", "key", "status"];
/**
 * The tenant of the rollups that sum every tenant (unauthenticated requests included), so a report
 * over all tenants reads one row per period and value however many tenants there are. Not kept for
 * the key dimension: a key belongs to one tenant, so the per-tenant rows are already that sum.
 */
export const ALL_TENANTS = "*";

export interface RollupKey {
  grain: number;
  dim: RollupDim;
  start: number;
  /** "" stands for null (see the usage_rollup table). */
  tenant: string;
  value: string;
}

export interface RollupDelta extends RollupKey {
  totals: Totals;
}

export function dimValue(dim: RollupDim, r: Pick<UsageRow, "route" | "keyId" | "status">): string {
  switch (dim) {
    case "all":
      return "";
    case "route":
      return r.route ?? "";
    case "key":
      return r.keyId ?? "";
    case "status":
      return String(r.status);
  }
}

/** The rollups of one tenant in one period: the "all" totals and one per value of each dimension. */
interface PeriodGroup {
  start: number;
  tenant: string;
  all: Totals;
  byDim: Record<Exclude<RollupDim, "all">, Map<string, Totals>>;
}

const newGroup = (start: number, tenant: string): PeriodGroup => ({
  start,
  tenant,
  all: emptyTotals(),
  byDim: { route: new Map(), key: new Map(), status: new Map() },
});

function totalsIn(m: Map<string, Totals>, value: string): Totals {
  let t = m.get(value);
  if (!t) {
    t = emptyTotals();
    m.set(value, t);
  }
  return t;
}

function groupIn(m: Map<string, PeriodGroup>, start: number, tenant: string): PeriodGroup {
  // \u0000 cannot occur in a tenant id, so the joined key is unambiguous.
  const id = `${start}\u0000${tenant}`;
  let g = m.get(id);
  if (!g) {
    g = newGroup(start, tenant);
    m.set(id, g);
  }
  return g;
}

/**
 * Sums a batch of rows into the rollup rows it touches, so a flush writes each of those once. Rows are
 * summed per minute; hours are summed from the minutes, which are far fewer than the rows.
 *
 * Each (minute, tenant) group holds several totals with a histogram each, so summing stops once
 * `maxGroups` groups are open, at `end`: the caller writes those and sums the rest separately. With
 * few tenants a whole batch fits; with thousands, nearly every row opens a group of its own.
 */
export function rollupDeltas(
  rows: readonly UsageRow[],
  from = 0,
  maxGroups = Number.POSITIVE_INFINITY,
): { deltas: RollupDelta[]; end: number } {
  const minutes = new Map<string, PeriodGroup>();
  let end = from;
  for (; end < rows.length && minutes.size < maxGroups; end++) {
    const r = rows[end]!;
    const g = groupIn(minutes, Math.floor(r.ts / MINUTE) * MINUTE, r.tenantId ?? "");
    const error = isError(r.status, r.outcome);
    const bucket = bucketOf(r.latencyMs);
    addFacts(g.all, r, error, bucket);
    addFacts(totalsIn(g.byDim.route, r.route ?? ""), r, error, bucket);
    addFacts(totalsIn(g.byDim.key, r.keyId ?? ""), r, error, bucket);
    addFacts(totalsIn(g.byDim.status, String(r.status)), r, error, bucket);
  }
  const hours = new Map<string, PeriodGroup>();
  for (const m of minutes.values()) {
    const h = groupIn(hours, Math.floor(m.start / HOUR) * HOUR, m.tenant);
    addTotals(h.all, m.all);
    for (const dim of ["route", "key", "status"] as const) {
      for (const [value, t] of m.byDim[dim]) addTotals(totalsIn(h.byDim[dim], value), t);
    }
  }
  const out: RollupDelta[] = [];
  for (const [grain, groups] of [
    [MINUTE, minutes],
    [HOUR, hours],
  ] as const) {
    for (const g of [...groups.values(), ...acrossTenants(groups)]) {
      out.push({ grain, dim: "all", start: g.start, tenant: g.tenant, value: "", totals: g.all });
      for (const dim of ["route", "key", "status"] as const) {
        for (const [value, totals] of g.byDim[dim]) {
          out.push({ grain, dim, start: g.start, tenant: g.tenant, value, totals });
        }
      }
    }
  }
  return { deltas: out, end };
}

function acrossTenants(groups: Map<string, PeriodGroup>): PeriodGroup[] {
  const sums = new Map<number, PeriodGroup>();
  for (const g of groups.values()) {
    let sum = sums.get(g.start);
    if (!sum) {
      sum = newGroup(g.start, ALL_TENANTS);
      sums.set(g.start, sum);
    }
    addTotals(sum.all, g.all);
    for (const dim of ["route", "status"] as const) {
      for (const [value, t] of g.byDim[dim]) addTotals(totalsIn(sum.byDim[dim], value), t);
    }
  }
  return [...sums.values()];
}
