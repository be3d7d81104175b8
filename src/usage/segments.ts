/**
 * Cuts a time range into pieces each answered by the coarsest source that covers it exactly: hour
 * rollups for whole hours, minute rollups for the whole minutes at either end, raw rows for the
 * partial minutes at the very ends. Totals are sums, so the pieces add up to the exact answer, and
 * the work depends on the length of the range in hours, not on how many requests it holds.
 */

export interface Segment {
  /** Rollup grain in ms, or 0 for raw rows. */
  grain: number;
  from: number;
  to: number;
}

/** `grains` from coarsest to finest; the result is ordered by time and covers [from, to) exactly. */
export function segments(from: number, to: number, grains: readonly number[]): Segment[] {
  if (from >= to) return [];
  const [g, ...finer] = grains;
  if (g === undefined) return [{ grain: 0, from, to }];
  const a = Math.ceil(from / g) * g;
  const b = Math.floor(to / g) * g;
  if (a >= b) return segments(from, to, finer);
  return [...segments(from, a, finer), { grain: g, from: a, to: b }, ...segments(b, to, finer)];
}
