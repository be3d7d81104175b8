/**
 * Reads the totals of a time range from the cheapest exact sources (see segments.ts) and hands each
 * piece to a sink that decides which group it belongs to. Shared by queries and period exports.
 */
import type { Database } from "bun:sqlite";
import type { RollupDim } from "../db/schema.ts";
import { ALL_TENANTS, dimValue } from "./rollup.ts";
import type { UsageRow } from "./row.ts";
import { segments } from "./segments.ts";
import { addRow, addStored, type StoredTotals, type Totals } from "./totals.ts";

export interface ScanRange {
  from: number;
  to: number;
  /** Only this tenant; otherwise every tenant, unauthenticated requests included. */
  tenant?: string | undefined;
  /** Without a tenant: hand the sink each tenant's share instead of the sum over tenants. */
  perTenant?: boolean;
  dim: RollupDim;
  /** Rollup grains that may be used, coarsest first. */
  grains: readonly number[];
}

/**
 * Returns the totals a piece starting at `start` adds into. `tenant` is "" for unauthenticated
 * requests and ALL_TENANTS for a piece that sums every tenant.
 */
export type Sink = (start: number, tenant: string, value: string) => Totals;

export type RawFacts = Pick<
  UsageRow,
  "ts" | "tenantId" | "keyId" | "route" | "status" | "outcome" | "cost" | "bytesIn" | "bytesOut" | "latencyMs"
> & { upstreamMs: number | null };

export type StoredRollup = StoredTotals & { start: number; tenant_id: string; value: string };

/**
 * One read a scan makes: the raw rows of a time range, or the rollups of one grain and dimension
 * whose period starts in it, of one tenant (`one`: a tenant id, or ALL_TENANTS for the all-tenant
 * sums) or, with `one` null, of every tenant.
 */
export type ScanRead =
  | { kind: "raw"; from: number; to: number; tenant: string | undefined }
  | { kind: "rollups"; grain: number; dim: RollupDim; from: number; to: number; one: string | null };

/** The reads that answer `range`, in time order; the same whichever database holds the rows. */
export function scanReads(range: ScanRange): ScanRead[] {
  const { tenant, dim } = range;
  const one = tenant ?? (range.perTenant || dim === "key" ? null : ALL_TENANTS);
  return segments(range.from, range.to, range.grains).map((seg) =>
    seg.grain === 0
      ? { kind: "raw", from: seg.from, to: seg.to, tenant }
      : { kind: "rollups", grain: seg.grain, dim, from: seg.from, to: seg.to, one },
  );
}

/** Hands the rows one read returned to the sink. */
export function feed(
  read: ScanRead,
  rows: Iterable<RawFacts> | Iterable<StoredRollup>,
  dim: RollupDim,
  sink: Sink,
): void {
  if (read.kind === "raw") {
    for (const r of rows as Iterable<RawFacts>) addRow(sink(r.ts, r.tenantId ?? "", dimValue(dim, r)), r);
  } else {
    for (const r of rows as Iterable<StoredRollup>) addStored(sink(r.start, r.tenant_id, r.value), r);
  }
}

/** Reads totals; SQLite's scanner does so synchronously, PostgreSQL's (cluster mode) asynchronously. */
export interface Scanner {
  scan(range: ScanRange, sink: Sink): void | Promise<void>;
}

export const RAW_COLUMNS =
  "ts, tenant_id AS tenantId, key_id AS keyId, route, status, outcome, cost, bytes_in AS bytesIn, " +
  "bytes_out AS bytesOut, latency_ms AS latencyMs, upstream_ms AS upstreamMs";
export const ROLLUP_COLUMNS =
  "start, tenant_id, value, requests, errors, cost, bytes_in, bytes_out, upstream_count, upstream_ms, " +
  "latency_min, latency_max, latency_hist";

export class TotalsScanner implements Scanner {
  private readonly raw;
  private readonly rawTenant;
  private readonly rollupEach;
  private readonly rollupOne;

  constructor(sqlite: Database) {
    this.raw = sqlite.prepare<RawFacts, [number, number]>(
      `SELECT ${RAW_COLUMNS} FROM usage WHERE ts >= ? AND ts < ?`,
    );
    this.rawTenant = sqlite.prepare<RawFacts, [number, number, string]>(
      `SELECT ${RAW_COLUMNS} FROM usage WHERE ts >= ? AND ts < ? AND tenant_id = ?`,
    );
    this.rollupEach = sqlite.prepare<StoredRollup, [number, string, number, number, string]>(
      `SELECT ${ROLLUP_COLUMNS} FROM usage_rollup WHERE grain = ? AND dim = ? AND start >= ? AND start < ? ` +
        "AND tenant_id <> ?",
    );
    // The primary key leads with time, so one tenant's rollups (or the all-tenant ones) are read with a
    // seek per period rather than a scan past every other tenant's; CROSS JOIN keeps periods outermost.
    this.rollupOne = sqlite.prepare<StoredRollup, [number, number, number, number, number, string, string]>(
      "WITH RECURSIVE period(s) AS (SELECT ? UNION ALL SELECT s + ? FROM period WHERE s + ? < ?) " +
        `SELECT ${ROLLUP_COLUMNS} FROM period CROSS JOIN usage_rollup ` +
        "WHERE grain = ? AND dim = ? AND start = s AND tenant_id = ?",
    );
  }

  scan(range: ScanRange, sink: Sink): void {
    for (const read of scanReads(range)) feed(read, this.read(read), range.dim, sink);
  }

  private read(r: ScanRead): Iterable<RawFacts> | Iterable<StoredRollup> {
    if (r.kind === "raw") {
      return r.tenant === undefined
        ? this.raw.iterate(r.from, r.to)
        : this.rawTenant.iterate(r.from, r.to, r.tenant);
    }
    return r.one === null
      ? this.rollupEach.iterate(r.grain, r.dim, r.from, r.to, ALL_TENANTS)
      : this.rollupOne.iterate(r.from, r.grain, r.grain, r.to, r.grain, r.dim, r.one);
  }
}
