/**
 * Mergeable totals of a set of usage rows: what a rollup row stores and what a query returns per
 * group. Everything here is a sum, a min, a max or a histogram, so totals of parts add up exactly to
 * the totals of the whole, whichever way a time range is cut into rollups and raw rows.
 */
import { addEncoded, bucketOf, emptyHistogram, type Histogram, percentile } from "./histogram.ts";
import { isError, type UsageRow } from "./row.ts";

export interface Totals {
  requests: number;
  errors: number;
  cost: number;
  bytesIn: number;
  bytesOut: number;
  /** Requests that reached the upstream, and the sum of their upstream latencies. */
  upstreamCount: number;
  upstreamMs: number;
  latencyMin: number;
  latencyMax: number;
  hist: Histogram;
}

export function emptyTotals(): Totals {
  return {
    requests: 0,
    errors: 0,
    cost: 0,
    bytesIn: 0,
    bytesOut: 0,
    upstreamCount: 0,
    upstreamMs: 0,
    latencyMin: Number.POSITIVE_INFINITY,
    latencyMax: Number.NEGATIVE_INFINITY,
    hist: emptyHistogram(),
  };
}

/** The fields of one raw row that totals need; UsageRow and the query's raw-row reads both fit. */
export type RowFacts = Pick<
  UsageRow,
  "status" | "outcome" | "cost" | "bytesIn" | "bytesOut" | "latencyMs" | "upstreamMs"
>;

export function addRow(t: Totals, r: RowFacts): void {
  addFacts(t, r, isError(r.status, r.outcome), bucketOf(r.latencyMs));
}

/** addRow with the error flag and histogram bucket already worked out (rollups reuse them per row). */
export function addFacts(t: Totals, r: RowFacts, error: boolean, bucket: number): void {
  t.requests++;
  if (error) t.errors++;
  t.cost += r.cost;
  t.bytesIn += r.bytesIn;
  t.bytesOut += r.bytesOut;
  if (r.upstreamMs !== null) {
    t.upstreamCount++;
    t.upstreamMs += r.upstreamMs;
  }
  if (r.latencyMs < t.latencyMin) t.latencyMin = r.latencyMs;
  if (r.latencyMs > t.latencyMax) t.latencyMax = r.latencyMs;
  t.hist[bucket] = t.hist[bucket]! + 1;
}

/** A rollup row as read from SQLite (the histogram still encoded). */
export interface StoredTotals {
  requests: number;
  errors: number;
  cost: number;
  bytes_in: number;
  bytes_out: number;
  upstream_count: number;
  upstream_ms: number;
  latency_min: number;
  latency_max: number;
  latency_hist: Uint8Array;
}

export function addStored(t: Totals, s: StoredTotals): void {
  t.requests += s.requests;
  t.errors += s.errors;
  t.cost += s.cost;
  t.bytesIn += s.bytes_in;
  t.bytesOut += s.bytes_out;
  t.upstreamCount += s.upstream_count;
  t.upstreamMs += s.upstream_ms;
  if (s.latency_min < t.latencyMin) t.latencyMin = s.latency_min;
  if (s.latency_max > t.latencyMax) t.latencyMax = s.latency_max;
  addEncoded(t.hist, s.latency_hist);
}

export function addTotals(t: Totals, o: Totals): void {
  t.requests += o.requests;
  t.errors += o.errors;
  t.cost += o.cost;
  t.bytesIn += o.bytesIn;
  t.bytesOut += o.bytesOut;
  t.upstreamCount += o.upstreamCount;
  t.upstreamMs += o.upstreamMs;
  if (o.latencyMin < t.latencyMin) t.latencyMin = o.latencyMin;
  if (o.latencyMax > t.latencyMax) t.latencyMax = o.latencyMax;
  for (let i = 0; i < t.hist.length; i++) t.hist[i] = t.hist[i]! + o.hist[i]!;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  /** Exact. */
  max: number;
}

export function latencySummary(t: Totals): LatencySummary | null {
  if (t.requests === 0) return null;
  const p = (q: number) => round3(percentile(t.hist, q, t.latencyMin, t.latencyMax)!);
  return { p50: p(50), p90: p(90), p99: p(99), max: round3(t.latencyMax) };
}

export const upstreamMean = (t: Totals): number | null =>
  t.upstreamCount === 0 ? null : round3(t.upstreamMs / t.upstreamCount);

const round3 = (n: number) => Math.round(n * 1000) / 1000;
