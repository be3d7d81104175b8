/**
 * Where a quota is heading: the count at the period's end if the period goes on as it went so far.
 * Shared by the dashboard and the portal (which draw the same burn-down).
 */

/** Below this share of the period elapsed, the pace says too little to project from. */
const MIN_ELAPSED_SHARE = 0.01;

export interface QuotaPace {
  used: number;
  /** Epoch ms. */
  periodStart: number;
  resetsAt: number;
  now: number;
}

/** The projected count at resetsAt, or null when too little of the period has passed. */
export function projectedUse({ used, periodStart, resetsAt, now }: QuotaPace): number | null {
  const length = resetsAt - periodStart;
  const elapsed = Math.min(Math.max(now - periodStart, 0), length);
  if (length <= 0 || elapsed < length * MIN_ELAPSED_SHARE) return null;
  return Math.round((used * length) / elapsed);
}
