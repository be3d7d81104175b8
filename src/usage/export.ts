/**
 * Streaming exports for billing pipelines: raw rows, or per-period totals per tenant, as CSV or NDJSON.
 *
 * Raw rows are read a page at a time by (ts, id) keyset, each page with one synchronous stmt.iterate()
 * run to completion, only when the consumer pulls: memory stays at one page whatever the export size,
 * and no statement (hence no read transaction pinning the WAL) stays open while the client is slow.
 * In cluster mode the pages and totals come from PostgreSQL instead (RawPages and Scanner), read the
 * same way but asynchronously.
 * An export is not a snapshot: rows committed behind the cursor while it runs are not included, so
 * billing should export closed periods (`to` at least flushInterval plus the longest request ago).
 */
import type { Database } from "bun:sqlite";
import { type Cell, csvLine, type ExportFormat, ndjsonLine } from "./format.ts";
import { checkRange, checkTenant } from "./query.ts";
import { HOUR, MINUTE } from "./rollup.ts";
import type { Scanner } from "./scan.ts";
import { emptyTotals, type Totals } from "./totals.ts";

export const GRANULARITIES = ["raw", "hour", "day", "month"] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export interface ExportQuery {
  format: ExportFormat;
  granularity: Granularity;
  tenant?: string | undefined;
  from: number;
  to: number;
}

export const RAW_COLUMNS = [
  "time",
  "request_id",
  "tenant",
  "key_id",
  "route",
  "method",
  "path",
  "status",
  "outcome",
  "cost_units",
  "bytes_in",
  "bytes_out",
  "latency_ms",
  "upstream_ms",
  "would_refuse",
] as const;

export const PERIOD_COLUMNS = [
  "period_start",
  "period_end",
  "tenant",
  "requests",
  "errors",
  "cost_units",
  "bytes_in",
  "bytes_out",
] as const;

const PAGE_ROWS = 1000;

export interface RawRecord {
  id: number;
  ts: number;
  request_id: string;
  tenant_id: string | null;
  key_id: string | null;
  route: string | null;
  method: string;
  path: string;
  status: number;
  outcome: string;
  cost: number;
  bytes_in: number;
  bytes_out: number;
  latency_ms: number;
  upstream_ms: number | null;
  would_refuse: string | null;
}

export const SELECT_RAW =
  "SELECT id, ts, request_id, tenant_id, key_id, route, method, path, status, outcome, cost, bytes_in, " +
  "bytes_out, latency_ms, upstream_ms, would_refuse FROM usage";
// The first bound is the cursor's ts, not the range's start: SQLite seeks the index to it, whereas a
// row-value comparison alone would be checked against every row from the start of the range.
const PAGE = "AND (ts, id) > (?, ?) ORDER BY ts, id LIMIT ?";

/** Where raw rows are read from, a page at a time, ordered by (ts, id). */
export interface RawPages {
  /** Up to `limit` rows of the query's tenant (or all) with ts before `q.to` and (ts, id) after `cursor`. */
  page(
    q: Pick<ExportQuery, "tenant" | "to">,
    cursor: Cursor,
    limit: number,
  ): Iterable<RawRecord> | Promise<Iterable<RawRecord>>;
}

type Cursor = [ts: number, id: number];

export class SqliteRawPages implements RawPages {
  private readonly all;
  private readonly ofTenant;

  constructor(sqlite: Database) {
    this.all = sqlite.prepare<RawRecord, [number, number, number, number, number]>(
      `${SELECT_RAW} WHERE ts >= ? AND ts < ? ${PAGE}`,
    );
    this.ofTenant = sqlite.prepare<RawRecord, [string, number, number, number, number, number]>(
      `${SELECT_RAW} WHERE tenant_id = ? AND ts >= ? AND ts < ? ${PAGE}`,
    );
  }

  page(q: Pick<ExportQuery, "tenant" | "to">, [ts, id]: Cursor, limit: number): Iterable<RawRecord> {
    return q.tenant === undefined
      ? this.all.iterate(ts, q.to, ts, id, limit)
      : this.ofTenant.iterate(q.tenant, ts, q.to, ts, id, limit);
  }
}

type PeriodTotals = Map<string, { start: number; tenant: string; t: Totals }>;

export class UsageExporter {
  constructor(
    private readonly pages: RawPages,
    private readonly scanner: Scanner,
  ) {}

  /** For synchronous sources (SQLite): a bad range throws here, before anything is streamed. */
  export(q: ExportQuery): ReadableStream<Uint8Array> {
    checkRange(q.from, q.to);
    checkTenant(q.tenant);
    if (q.granularity === "raw") return this.raw(q);
    const { totals } = this.sumPeriods(q);
    return this.periods(q, totals);
  }

  /**
   * For asynchronous sources (PostgreSQL): the totals, or the first page, are read before the stream
   * is returned, so a database that cannot answer fails the request instead of cutting off its body.
   */
  async exportAsync(q: ExportQuery): Promise<ReadableStream<Uint8Array>> {
    checkRange(q.from, q.to);
    checkTenant(q.tenant);
    if (q.granularity === "raw") {
      const start: Cursor = [q.from, Number.MIN_SAFE_INTEGER];
      return this.raw(q, [...(await this.pages.page(q, start, PAGE_ROWS))]);
    }
    const { totals, done } = this.sumPeriods(q);
    await done;
    return this.periods(q, totals);
  }

  private raw(q: ExportQuery, first?: RawRecord[]): ReadableStream<Uint8Array> {
    const encode = encoder(q.format, RAW_COLUMNS);
    const text = new TextEncoder();
    let cursor: Cursor = [q.from, Number.MIN_SAFE_INTEGER];
    let header = encode.header;
    let prefetched = first;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const rows = prefetched ?? (await this.pages.page(q, cursor, PAGE_ROWS));
          prefetched = undefined;
          let out = header;
          header = "";
          let n = 0;
          for (const r of rows) {
            n++;
            cursor = [r.ts, r.id];
            out += encode.line([
              new Date(r.ts).toISOString(),
              r.request_id,
              r.tenant_id,
              r.key_id,
              r.route,
              r.method,
              r.path,
              r.status,
              r.outcome,
              r.cost,
              r.bytes_in,
              r.bytes_out,
              r.latency_ms,
              r.upstream_ms,
              r.would_refuse,
            ]);
          }
          if (out) controller.enqueue(text.encode(out));
          if (n < PAGE_ROWS) controller.close();
        },
      },
      { highWaterMark: 1 },
    );
  }

  /** Per-period totals per tenant; `done` settles once the scanner has handed over every piece. */
  private sumPeriods(q: ExportQuery): { totals: PeriodTotals; done: void | Promise<void> } {
    const periodOf = periodFunctions[q.granularity as Exclude<Granularity, "raw">];
    const totals: PeriodTotals = new Map();
    const done = this.scanner.scan(
      { from: q.from, to: q.to, tenant: q.tenant, perTenant: true, dim: "all", grains: [HOUR, MINUTE] },
      (at, tenant) => {
        const start = periodOf.start(at);
        const id = `${start}\u0000${tenant}`;
        let e = totals.get(id);
        if (!e) {
          e = { start, tenant, t: emptyTotals() };
          totals.set(id, e);
        }
        return e.t;
      },
    );
    return { totals, done };
  }

  /**
   * Per-period totals are small (periods × tenants), so they are summed first and then streamed.
   * Periods are UTC hours, days or calendar months, clipped to [from, to).
   */
  private periods(q: ExportQuery, totals: PeriodTotals): ReadableStream<Uint8Array> {
    const periodOf = periodFunctions[q.granularity as Exclude<Granularity, "raw">];
    const rows = [...totals.values()].sort((a, b) => a.start - b.start || (a.tenant < b.tenant ? -1 : 1));
    const encode = encoder(q.format, PERIOD_COLUMNS);
    const text = new TextEncoder();
    let i = 0;
    let header = encode.header;
    return new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          let out = header;
          header = "";
          for (const end = Math.min(rows.length, i + PAGE_ROWS); i < end; i++) {
            const { start, tenant, t } = rows[i]!;
            out += encode.line([
              new Date(Math.max(start, q.from)).toISOString(),
              new Date(Math.min(periodOf.next(start), q.to)).toISOString(),
              tenant || null,
              t.requests,
              t.errors,
              t.cost,
              t.bytesIn,
              t.bytesOut,
            ]);
          }
          if (out) controller.enqueue(text.encode(out));
          if (i >= rows.length) controller.close();
        },
      },
      { highWaterMark: 1 },
    );
  }
}

function encoder(format: ExportFormat, columns: readonly string[]) {
  return format === "csv"
    ? { header: csvLine(columns), line: (cells: Cell[]) => csvLine(cells) }
    : { header: "", line: (cells: Cell[]) => ndjsonLine(columns, cells) };
}

const DAY = 24 * HOUR;

const periodFunctions: Record<
  "hour" | "day" | "month",
  { start(t: number): number; next(t: number): number }
> = {
  hour: { start: (t) => Math.floor(t / HOUR) * HOUR, next: (t) => t + HOUR },
  day: { start: (t) => Math.floor(t / DAY) * DAY, next: (t) => t + DAY },
  month: {
    start: (t) => {
      const d = new Date(t);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    },
    next: (t) => {
      const d = new Date(t);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    },
  },
};
