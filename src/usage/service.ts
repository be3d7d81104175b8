/**
 * What the control API asks of usage: reports and exports. Knows nothing of HTTP; errors the caller
 * caused are UsageQueryError, with a message safe to show.
 */
import type { Database } from "bun:sqlite";
import type { Clock } from "../lib/clock.ts";
import { type ExportQuery, SqliteRawPages, UsageExporter } from "./export.ts";
import { queryUsage, type UsageQuery, type UsageReport } from "./query.ts";
import { type Refusal, type RefusalQuery, refusalReader } from "./refusals.ts";
import { TotalsScanner } from "./scan.ts";

/**
 * What the control API reads usage through: SQLite answers at once (UsageService), PostgreSQL in
 * cluster mode asynchronously; errors the caller caused are UsageQueryError, a database that cannot
 * answer is UsageUnavailableError.
 */
export interface UsageReads {
  queryUsage(q: UsageQuery): UsageReport | Promise<UsageReport>;
  exportUsage(q: ExportQuery): ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>;
  /** A tenant's latest refused requests, newest first. */
  refusals(q: RefusalQuery): Refusal[] | Promise<Refusal[]>;
  resolveRange(from: number | undefined, to: number | undefined): { from: number; to: number };
}

export interface UsageService extends UsageReads {
  queryUsage(q: UsageQuery): UsageReport;
  /** A stream of encoded bytes; checks the range before returning, then reads lazily as it is pulled. */
  exportUsage(q: ExportQuery): ReadableStream<Uint8Array>;
  /** A tenant's latest refused requests, newest first. */
  refusals(q: RefusalQuery): Refusal[];
  /** Fills in a missing end (now) and start (24 hours before the end). */
  resolveRange(from: number | undefined, to: number | undefined): { from: number; to: number };
}

export const DEFAULT_RANGE_MS = 24 * 3_600_000;

/**
 * A report's range, [from, to): by default the 24 hours up to and including this millisecond. The
 * end is exclusive, so the default is just after now: on test mode's frozen clock every request
 * answered so far carries this very millisecond, and must count.
 */
export function resolveRange(from: number | undefined, to: number | undefined, now: number) {
  return { from: from ?? (to ?? now) - DEFAULT_RANGE_MS, to: to ?? now + 1 };
}

/** `deps.sqlite` is read on every call: the connection is replaced if its file had to be recreated. */
export function createUsageService(deps: { readonly sqlite: Database; clock: Clock }): UsageService {
  let built:
    | {
        sqlite: Database;
        scanner: TotalsScanner;
        exporter: UsageExporter;
        refusals: ReturnType<typeof refusalReader>;
      }
    | undefined;
  const on = () => {
    const { sqlite } = deps;
    if (built?.sqlite !== sqlite) {
      const scanner = new TotalsScanner(sqlite);
      built = {
        sqlite,
        scanner,
        exporter: new UsageExporter(new SqliteRawPages(sqlite), scanner),
        refusals: refusalReader(sqlite),
      };
    }
    return built;
  };
  return {
    queryUsage: (q) => queryUsage(on().scanner, q),
    exportUsage: (q) => on().exporter.export(q),
    refusals: (q) => on().refusals(q),
    resolveRange: (from, to) => resolveRange(from, to, deps.clock.now()),
  };
}
