/**
 * GET /usage and GET /usage/export in cluster mode: the same reports and exports as on one node
 * (usage/query.ts, usage/export.ts, usage/scan.ts decide what to read and add it up), read from the
 * rows and rollups every node shipped to PostgreSQL. Each node's rollup of a period is its own row;
 * the report adds them like any other pieces.
 */
import type { Clock } from "../../lib/clock.ts";
import type { RawPages, RawRecord } from "../../usage/export.ts";
import { UsageExporter } from "../../usage/export.ts";
import { queryUsageAsync, UsageUnavailableError } from "../../usage/query.ts";
import { checkRefusalQuery, REJECTED, type RefusalRow, refusalOf } from "../../usage/refusals.ts";
import { ALL_TENANTS } from "../../usage/rollup.ts";
import {
  feed,
  type RawFacts,
  type Scanner,
  type ScanRead,
  type StoredRollup,
  scanReads,
} from "../../usage/scan.ts";
import { resolveRange, type UsageReads } from "../../usage/service.ts";
import { describePgError, isUnreachable, type Pg } from "./connect.ts";

/** int8 columns arrive as text (exact beyond 2^53); these stay far below it. */
const num = (v: unknown): number => Number(v);

const RAW =
  'SELECT ts, tenant_id AS "tenantId", key_id AS "keyId", route, status, outcome, cost, bytes_in AS "bytesIn", ' +
  'bytes_out AS "bytesOut", latency_ms AS "latencyMs", upstream_ms AS "upstreamMs" FROM usage WHERE ts >= $1 AND ts < $2';
const ROLLUPS =
  "SELECT start, tenant_id, value, requests, errors, cost, bytes_in, bytes_out, upstream_count, upstream_ms, " +
  "latency_min, latency_max, latency_hist FROM usage_rollup WHERE grain = $1 AND dim = $2 AND start >= $3 AND start < $4";
const EXPORT =
  "SELECT id, ts, request_id, tenant_id, key_id, route, method, path, status, outcome, cost, bytes_in, " +
  "bytes_out, latency_ms, upstream_ms, would_refuse FROM usage WHERE ts >= $1 AND ts < $2 AND (ts, id) > ($3, $4)";
const REFUSALS =
  'SELECT ts, request_id AS "requestId", key_id AS "keyId", route, method, path, status, outcome FROM usage ' +
  `WHERE tenant_id = $1 AND ts >= $2 AND ts < $3 AND outcome LIKE '${REJECTED}%' ORDER BY ts DESC LIMIT $4`;

export function createPgUsageReads(deps: { pg: Pg; clock: Clock }): UsageReads {
  const { sql } = deps.pg;

  const read = async (r: ScanRead): Promise<RawFacts[] | StoredRollup[]> => {
    if (r.kind === "raw") {
      const rows = (await (r.tenant === undefined
        ? sql.unsafe(RAW, [r.from, r.to])
        : sql.unsafe(`${RAW} AND tenant_id = $3`, [r.from, r.to, r.tenant]))) as RawFacts[];
      return rows.map((x) => ({
        ...x,
        ts: num(x.ts),
        cost: num(x.cost),
        bytesIn: num(x.bytesIn),
        bytesOut: num(x.bytesOut),
      }));
    }
    const rows = (await (r.one === null
      ? sql.unsafe(`${ROLLUPS} AND tenant_id <> $5`, [r.grain, r.dim, r.from, r.to, ALL_TENANTS])
      : sql.unsafe(`${ROLLUPS} AND tenant_id = $5`, [
          r.grain,
          r.dim,
          r.from,
          r.to,
          r.one,
        ]))) as StoredRollup[];
    return rows.map((x) => ({
      ...x,
      start: num(x.start),
      requests: num(x.requests),
      errors: num(x.errors),
      cost: num(x.cost),
      bytes_in: num(x.bytes_in),
      bytes_out: num(x.bytes_out),
      upstream_count: num(x.upstream_count),
    }));
  };

  // Every piece is read first (together), then handed over in the order the scan defines.
  const scanner: Scanner = {
    async scan(range, sink) {
      const reads = scanReads(range);
      const results = await Promise.all(reads.map(read));
      for (const [i, r] of reads.entries()) feed(r, results[i]!, range.dim, sink);
    },
  };

  const pages: RawPages = {
    async page(q, [ts, id], limit) {
      const params: (string | number)[] = [ts, q.to, ts, id];
      const tenant = q.tenant === undefined ? "" : ` AND tenant_id = $${params.push(q.tenant)}`;
      const rows = (await sql.unsafe(
        `${EXPORT}${tenant} ORDER BY ts, id LIMIT $${params.push(limit)}`,
        params,
      )) as RawRecord[];
      return rows.map((x) => ({
        ...x,
        id: num(x.id),
        ts: num(x.ts),
        cost: num(x.cost),
        bytes_in: num(x.bytes_in),
        bytes_out: num(x.bytes_out),
      }));
    },
  };

  const exporter = new UsageExporter(pages, scanner);
  return {
    queryUsage: (q) => unavailableWhenUnreachable(queryUsageAsync(scanner, q)),
    exportUsage: (q) => unavailableWhenUnreachable(exporter.exportAsync(q)),
    async refusals(q) {
      checkRefusalQuery(q);
      const rows = (await unavailableWhenUnreachable(
        sql.unsafe(REFUSALS, [q.tenant, q.from, q.to, q.limit]),
      )) as RefusalRow[];
      return rows.map((r) => refusalOf({ ...r, ts: num(r.ts) }));
    },
    resolveRange: (from, to) => resolveRange(from, to, deps.clock.now()),
  };
}

async function unavailableWhenUnreachable<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (!isUnreachable(err)) throw err;
    throw new UsageUnavailableError(
      `PostgreSQL cannot be reached (${describePgError(err)}); in cluster mode usage is read from it. ` +
        "Requests are still metered: each node keeps its rows until PostgreSQL answers again.",
    );
  }
}
