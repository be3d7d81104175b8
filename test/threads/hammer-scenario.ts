/** The views several threads hammer in threads-hammer.test.ts: the same on every thread, by seed. */
import { key, limit, quota, tenant } from "../limits/helpers.ts";

export const T0 = Date.UTC(2026, 0, 1);

export function scenario(seed: number) {
  // Windows of tens to hundreds of ms: the shared clock moves a few ms per request, so windows roll.
  const perTenant = limit(4 + (seed % 7), 40 + ((seed * 37) % 300), { name: "tenant-window" });
  const perKey = limit(2 + (seed % 3), 60 + ((seed * 53) % 200), { name: "key-window", by: "key" });
  const t = tenant({
    id: "acme",
    limits: [perTenant, perKey],
    quotas: [quota(250 + seed * 20, "day")],
    concurrency: 2 + (seed % 3),
  });
  const keys = [key({ id: "k1" }), key({ id: "k2" }), key({ id: "k3" })];
  return { t, keys, perTenant, perKey };
}

/** Shared Int32 cells of the test: the clock (ms after T0), requests in flight, the most seen. */
export const CELL = { clock: 0, inFlight: 1, maxInFlight: 2 } as const;

export interface HammerResult {
  /** [time, cost, key index] per admitted request. */
  admitted: number[][];
  /** [time, cost, key index, code] per refused request. */
  refused: [number, number, number, string][];
  /** Units each admitted request was finally billed (its quota count). */
  billed: number;
}
