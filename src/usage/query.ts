/**
 * Usage reports: totals per route, key, status or time bucket over a range, from rollups plus the raw
 * rows at the partial-minute edges, so a report costs about the same over a thousand rows or millions.
 */
import type { RollupDim } from "../db/schema.ts";
import { ALL_TENANTS, HOUR, MINUTE } from "./rollup.ts";
import type { Scanner, ScanRange, Sink, TotalsScanner } from "./scan.ts";
import {
  addTotals,
  emptyTotals,
  type LatencySummary,
  latencySummary,
  type Totals,
  upstreamMean,
} from "./totals.ts";

export const GROUP_BYS = ["route", "key", "status", "minute", "hour", "day", "month"] as const;
export type GroupBy = (typeof GROUP_BYS)[number];

export interface UsageQuery {
  tenant?: string | undefined;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  groupBy: GroupBy;
}

export interface UsageGroup {
  /** Route match text, key id, status, or the ISO start of the time bucket; null for "none". */
  group: string | null;
  requests: number;
  /** Requests with status >= 400 or an outcome other than "ok" (refused, upstream errors, aborted). */
  errors: number;
  costUnits: number;
  bytesIn: number;
  bytesOut: number;
  /** Total latency percentiles from the histogram (within 9.05%), and the exact maximum. */
  latencyMs: LatencySummary | null;
  /** Mean time to upstream response headers over requests that reached the upstream. */
  upstreamMsMean: number | null;
}

export interface UsageReport {
  tenant: string | null;
  from: string;
  to: string;
  groupBy: GroupBy;
  groups: UsageGroup[];
  total: UsageGroup;
}

/** A query the service refuses; its message is safe to show the caller. */
export class UsageQueryError extends Error {}

/** The database that holds the rows cannot be read now (cluster mode: PostgreSQL); safe to show. */
export class UsageUnavailableError extends Error {}

/** A time-bucketed report holds at most this many buckets (a week of minutes). */
export const MAX_TIME_GROUPS = 10_080;
/** Latest instant a JS Date can hold. */
const MAX_TIME = 8.64e15;

/** Start of the UTC time bucket holding `t`, and how many buckets [from, to) spans. */
interface TimeBuckets {
  start(t: number): number;
  count(from: number, to: number): number;
}

const fixed = (unit: number): TimeBuckets => ({
  start: (t) => Math.floor(t / unit) * unit,
  count: (from, to) => Math.ceil(to / unit) - Math.floor(from / unit),
});

const monthIndex = (t: number) => {
  const d = new Date(t);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
};

/** UTC calendar months: whole hours always fall in one, so the hour rollups can be summed into them. */
const months: TimeBuckets = {
  start: (t) => {
    const d = new Date(t);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  },
  count: (from, to) => monthIndex(to - 1) - monthIndex(from) + 1,
};

const timeBuckets: Partial<Record<GroupBy, TimeBuckets>> = {
  minute: fixed(MINUTE),
  hour: fixed(HOUR),
  day: fixed(24 * HOUR),
  month: months,
};

export function checkRange(from: number, to: number): void {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to > MAX_TIME) {
    throw new UsageQueryError("from and to must be times between 1970 and 275760.");
  }
  if (from >= to) throw new UsageQueryError("from must be earlier than to.");
}

/** The rollups use "" and "*" as tenants of their own; neither can be asked for by name. */
export function checkTenant(tenant: string | undefined): void {
  if (tenant === "" || tenant === ALL_TENANTS) throw new UsageQueryError("tenant must be a tenant id.");
}

export function queryUsage(scanner: TotalsScanner, q: UsageQuery): UsageReport {
  const r = prepareReport(q);
  scanner.scan(r.range, r.sink);
  return r.report();
}

/** queryUsage for a scanner that reads asynchronously (PostgreSQL's, in cluster mode). */
export async function queryUsageAsync(scanner: Scanner, q: UsageQuery): Promise<UsageReport> {
  const r = prepareReport(q);
  await scanner.scan(r.range, r.sink);
  return r.report();
}

/** Checks the query; returns what to scan, the sink that groups what is read, and the report made of it. */
function prepareReport(q: UsageQuery): { range: ScanRange; sink: Sink; report(): UsageReport } {
  checkRange(q.from, q.to);
  checkTenant(q.tenant);
  const unit = timeBuckets[q.groupBy];
  if (unit !== undefined) {
    const buckets = unit.count(q.from, q.to);
    if (buckets > MAX_TIME_GROUPS) {
      throw new UsageQueryError(
        `groupBy=${q.groupBy} over this range gives ${buckets} groups; at most ${MAX_TIME_GROUPS} are ` +
          "allowed. Narrow from/to or group by a longer period.",
      );
    }
  }
  const dim: RollupDim = unit === undefined ? (q.groupBy as RollupDim) : "all";
  // Minute buckets cannot be read from hour rollups; everything else can.
  const grains = q.groupBy === "minute" ? [MINUTE] : [HOUR, MINUTE];

  const groups = new Map<string, Totals>();
  const at = (key: string) => {
    let t = groups.get(key);
    if (!t) {
      t = emptyTotals();
      groups.set(key, t);
    }
    return t;
  };
  return {
    range: { from: q.from, to: q.to, tenant: q.tenant, dim, grains },
    sink:
      unit === undefined ? (_start, _tenant, value) => at(value) : (start) => at(String(unit.start(start))),
    report: () => {
      const total = emptyTotals();
      for (const t of groups.values()) addTotals(total, t);
      const out = [...groups].map(([key, t]) => ({ key, t }));
      if (unit !== undefined) out.sort((a, b) => Number(a.key) - Number(b.key));
      else if (q.groupBy === "status") out.sort((a, b) => Number(a.key) - Number(b.key));
      // Busiest first; ties by name; "none" last.
      else out.sort((a, b) => b.t.requests - a.t.requests || order(a.key, b.key));

      return {
        tenant: q.tenant ?? null,
        from: new Date(q.from).toISOString(),
        to: new Date(q.to).toISOString(),
        groupBy: q.groupBy,
        groups: out.map(({ key, t }) =>
          group(unit === undefined ? key || null : new Date(Number(key)).toISOString(), t),
        ),
        total: group(null, total),
      };
    },
  };
}

function order(a: string, b: string): number {
  if (a === "" || b === "") return a === b ? 0 : a === "" ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function group(name: string | null, t: Totals): UsageGroup {
  return {
    group: name,
    requests: t.requests,
    errors: t.errors,
    costUnits: t.cost,
    bytesIn: t.bytesIn,
    bytesOut: t.bytesOut,
    latencyMs: latencySummary(t),
    upstreamMsMean: upstreamMean(t),
  };
}
