/**
 * A fixed log-bucketed latency histogram: the one shape shared by the flush (rollups), the query
 * (merging rollups and raw rows) and the tests, so percentiles are computed the same way everywhere.
 *
 * Bucket 0 holds [0, 1) ms. Bucket i (1..88) holds [2^((i-1)/4), 2^(i/4)) ms: four buckets per
 * doubling, each ~19% wide. Bucket 89 holds everything from 2^22 ms (~70 min) up. A percentile is
 * reported as the geometric middle of its bucket, clamped to the group's exact min and max, so it is
 * within 2^(1/8) - 1 ≈ 9.05% of the true nearest-rank value (exact below 1 ms only when min = max).
 */

export const BUCKETS = 90;
const LAST = BUCKETS - 1;
const PER_DOUBLING = 4;

/** Relative error bound of a reported percentile against the exact nearest-rank value. */
export const PERCENTILE_ERROR = 2 ** (1 / (2 * PER_DOUBLING)) - 1;

export function bucketOf(ms: number): number {
  if (!(ms >= 1)) return 0;
  const i = Math.floor(Math.log2(ms) * PER_DOUBLING) + 1;
  return Math.min(i, LAST);
}

/** The value a bucket stands for, before clamping to the observed min and max. */
export function bucketMiddle(i: number): number {
  if (i <= 0) return 0.5;
  if (i >= LAST) return Number.POSITIVE_INFINITY;
  return 2 ** ((i - 0.5) / PER_DOUBLING);
}

export type Histogram = Float64Array;

export const emptyHistogram = (): Histogram => new Float64Array(BUCKETS);

/**
 * Nearest-rank percentile (p in 0..100) of the values counted in `h`, whose exact extremes are
 * `min` and `max`. Returns null for an empty histogram.
 */
export function percentile(h: Histogram, p: number, min: number, max: number): number | null {
  let n = 0;
  for (let i = 0; i < BUCKETS; i++) n += h[i]!;
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += h[i]!;
    if (seen >= rank) return Math.min(max, Math.max(min, bucketMiddle(i)));
  }
  return max;
}

/**
 * Sparse encoding for SQLite: for each non-empty bucket, its index (one byte) and its count as an
 * unsigned LEB128 varint. A typical rollup row holds 5-20 buckets, so 10-60 bytes instead of 720.
 */
export function encodeHistogram(h: Histogram): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < BUCKETS; i++) {
    let c = h[i]!;
    if (c <= 0) continue;
    out.push(i);
    // Arithmetic rather than bit operators: counts may pass 2^31.
    while (c >= 128) {
      out.push((c % 128) | 128);
      c = Math.floor(c / 128);
    }
    out.push(c);
  }
  return Uint8Array.from(out);
}

/** Adds the counts encoded in `bytes` into `into`. Ignores a truncated tail rather than throwing. */
export function addEncoded(into: Histogram, bytes: Uint8Array): void {
  let p = 0;
  while (p < bytes.length) {
    const i = bytes[p++]!;
    let c = 0;
    let scale = 1;
    let b: number;
    do {
      if (p >= bytes.length) return;
      b = bytes[p++]!;
      c += (b & 127) * scale;
      scale *= 128;
    } while (b & 128);
    if (i < BUCKETS) into[i]! += c;
  }
}
