import { type OpenDb, openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { silentLog } from "../../src/lib/log.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";
import { isError, type UsageRow } from "../../src/usage/row.ts";
import { createBatchWriter } from "../../src/usage/store.ts";
import { UsageWriter } from "../../src/usage/writer.ts";

export const T0 = Date.UTC(2026, 0, 1);
export const MIN = 60_000;
export const HOUR = 3_600_000;

import { prng } from "../../src/lib/prng.ts";

export { prng };

let seq = 0;

export function row(over: Partial<UsageRow> = {}): UsageRow {
  return {
    ts: T0,
    requestId: `req-${String(seq++).padStart(6, "0")}`,
    tenantId: "acme",
    keyId: "acme-dev",
    route: "* /v1/**",
    method: "GET",
    path: "/v1/items",
    status: 200,
    outcome: "ok",
    cost: 1,
    bytesIn: 0,
    bytesOut: 100,
    latencyMs: 10,
    upstreamMs: 8,
    wouldRefuse: null,
    ...over,
  };
}

export interface Harness {
  db: OpenDb;
  clock: ManualClock;
  scheduler: ManualScheduler;
  writer: UsageWriter;
}

export function harness(opts: { flushRows?: number; flushIntervalMs?: number; bufferRows?: number } = {}) {
  const db = openDb(":memory:");
  const clock = new ManualClock(T0);
  const scheduler = new ManualScheduler(() => clock.now());
  const writer = new UsageWriter({
    write: createBatchWriter(db.sqlite),
    clock,
    log: silentLog,
    flushRows: opts.flushRows ?? 2000,
    flushIntervalMs: opts.flushIntervalMs ?? 200,
    bufferRows: opts.bufferRows ?? 100_000,
    scheduler,
  });
  return { db, clock, scheduler, writer } satisfies Harness;
}

/** Writes rows through the real flush path. */
export function store(db: OpenDb, rows: UsageRow[]): void {
  createBatchWriter(db.sqlite)(rows);
}

export const countRows = (db: OpenDb) =>
  (db.sqlite.query("SELECT count(*) AS n FROM usage").get() as { n: number }).n;

/** The exact nearest-rank percentile of `values`. */
export function exactPercentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
}

/** Brute-force totals over raw rows, the reference the rollup-based answers must equal. */
export function reference(rows: UsageRow[]) {
  return {
    requests: rows.length,
    errors: rows.filter((r) => isError(r.status, r.outcome)).length,
    costUnits: rows.reduce((s, r) => s + r.cost, 0),
    bytesIn: rows.reduce((s, r) => s + r.bytesIn, 0),
    bytesOut: rows.reduce((s, r) => s + r.bytesOut, 0),
    max: Math.max(...rows.map((r) => r.latencyMs)),
  };
}

/** A varied dataset over `hours` hours from T0: 3 tenants (and unauthenticated), routes, statuses. */
export function dataset(n: number, hours: number, seed = 1): UsageRow[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const out: UsageRow[] = [];
  for (let i = 0; i < n; i++) {
    const tenant = pick(["acme", "acme", "globex", "initech", null] as const);
    const status = tenant === null ? 401 : pick([200, 200, 200, 201, 404, 429, 502] as const);
    const outcome =
      status === 401
        ? "rejected:unauthorized"
        : status === 429
          ? "rejected:rate_limited"
          : status === 404
            ? "rejected:not_found"
            : status === 502
              ? "upstream_error"
              : rand() < 0.05
                ? "client_aborted"
                : "ok";
    const refused = outcome.startsWith("rejected:");
    const route =
      status === 401 || status === 404 ? null : pick(["* /v1/**", "POST /v1/reports/**", "GET,HEAD /v1/x"]);
    out.push(
      row({
        ts: T0 + Math.floor(rand() * hours * HOUR),
        tenantId: tenant,
        keyId: tenant === null ? null : `${tenant}-${pick(["a", "b"])}`,
        route,
        status,
        outcome,
        cost: refused ? 0 : route === "POST /v1/reports/**" ? 10 : 1,
        bytesIn: Math.floor(rand() * 1000),
        bytesOut: Math.floor(rand() * 10_000),
        latencyMs: Math.floor(Math.exp(rand() * 8)),
        upstreamMs: refused ? null : Math.round(rand() * 50_000) / 1000,
      }),
    );
  }
  return out;
}
