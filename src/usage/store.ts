/**
 * The hot write path: a batch of usage rows and the rollup rows they touch, written in one immediate
 * transaction with statements prepared once. Rollups are merged in JS (the histogram is a blob SQLite
 * cannot add), which is safe because the read and the write happen inside the same write transaction.
 */
import type { Database } from "bun:sqlite";
import { encodeHistogram } from "./histogram.ts";
import { type RollupDelta, rollupDeltas } from "./rollup.ts";
import type { UsageRow } from "./row.ts";
import { addStored, type StoredTotals } from "./totals.ts";

export type WriteBatch = (rows: readonly UsageRow[]) => void;

const INSERT_ROW =
  "INSERT INTO usage (ts, request_id, tenant_id, key_id, route, method, path, status, outcome, cost, " +
  "bytes_in, bytes_out, latency_ms, upstream_ms, would_refuse) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const SELECT_ROLLUP =
  "SELECT requests, errors, cost, bytes_in, bytes_out, upstream_count, upstream_ms, latency_min, " +
  "latency_max, latency_hist FROM usage_rollup WHERE grain = ? AND dim = ? AND start = ? AND tenant_id = ? " +
  "AND value = ?";

const UPSERT_ROLLUP =
  "INSERT INTO usage_rollup (grain, dim, start, tenant_id, value, requests, errors, cost, bytes_in, " +
  "bytes_out, upstream_count, upstream_ms, latency_min, latency_max, latency_hist) " +
  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
  "ON CONFLICT (grain, dim, start, tenant_id, value) DO UPDATE SET requests = excluded.requests, " +
  "errors = excluded.errors, cost = excluded.cost, bytes_in = excluded.bytes_in, " +
  "bytes_out = excluded.bytes_out, upstream_count = excluded.upstream_count, " +
  "upstream_ms = excluded.upstream_ms, latency_min = excluded.latency_min, " +
  "latency_max = excluded.latency_max, latency_hist = excluded.latency_hist";

export function createBatchWriter(sqlite: Database): WriteBatch {
  const insertRow = sqlite.query(INSERT_ROW);
  const selectRollup = sqlite.query<StoredTotals, [number, string, number, string, string]>(SELECT_ROLLUP);
  const upsertRollup = sqlite.query(UPSERT_ROLLUP);

  const write = sqlite.transaction((rows: readonly UsageRow[], deltas: readonly RollupDelta[]) => {
    for (const r of rows) {
      insertRow.run(
        r.ts,
        r.requestId,
        r.tenantId,
        r.keyId,
        r.route,
        r.method,
        r.path,
        r.status,
        r.outcome,
        r.cost,
        r.bytesIn,
        r.bytesOut,
        r.latencyMs,
        r.upstreamMs,
        r.wouldRefuse,
      );
    }
    for (const d of deltas) {
      const t = d.totals;
      const stored = selectRollup.get(d.grain, d.dim, d.start, d.tenant, d.value);
      if (stored) addStored(t, stored);
      upsertRollup.run(
        d.grain,
        d.dim,
        d.start,
        d.tenant,
        d.value,
        t.requests,
        t.errors,
        t.cost,
        t.bytesIn,
        t.bytesOut,
        t.upstreamCount,
        t.upstreamMs,
        t.latencyMin,
        t.latencyMax,
        encodeHistogram(t.hist),
      );
    }
  });
  // IMMEDIATE takes the write lock before the rollup reads, so no other connection can slip a write
  // between a read and the upsert that depends on it. The batch is summed before, to hold it briefly.
  return (rows) => write.immediate(rows, rollupDeltas(rows));
}
