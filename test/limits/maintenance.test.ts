import { expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import {
  type Every,
  MemoryQuotaStore,
  QuotaCounters,
  type QuotaStore,
  SlidingWindows,
  startLimitsMaintenance,
} from "../../src/policies/limits/index.ts";
import { limit, quota, T0 } from "./helpers.ts";

/** A scheduler the test drives by hand. */
function manualTimers() {
  const timers = new Map<number, () => void>();
  const every: Every = (ms, fn) => {
    timers.set(ms, fn);
    return () => timers.delete(ms);
  };
  return { every, fire: (ms: number) => timers.get(ms)?.(), timers };
}

test("flushes and sweeps on their timers, and flushes once more on stop", () => {
  const clock = new ManualClock(T0);
  const store = new MemoryQuotaStore();
  const quotas = new QuotaCounters(store, clock);
  const windows = new SlidingWindows();
  const t = manualTimers();
  const m = startLimitsMaintenance({
    clock,
    windows,
    quotas,
    flushEveryMs: 500,
    sweepEveryMs: 30_000,
    every: t.every,
  });

  quotas.add(quotas.counter(quota(10, "hour"), "acme", T0), 2);
  windows.add(windows.slot(limit(5, 1000), "acme", T0), 1);
  t.fire(500);
  expect(store.get("tenant:acme:plan:quota-hour", T0)).toBe(2);

  clock.advance(2 * 3_600_000);
  t.fire(30_000);
  expect(windows.size).toBe(0);
  expect(quotas.size).toBe(0);

  quotas.add(quotas.counter(quota(10, "hour"), "acme", clock.now()), 3);
  m.stop();
  expect(t.timers.size).toBe(0);
  expect(store.get("tenant:acme:plan:quota-hour", T0 + 2 * 3_600_000)).toBe(3);
});

test("a failing flush is reported, not thrown from the timer", () => {
  const clock = new ManualClock(T0);
  const broken: QuotaStore = {
    load: () => [],
    save: () => {
      throw new Error("database is locked");
    },
  };
  const quotas = new QuotaCounters(broken, clock);
  const errors: unknown[] = [];
  const t = manualTimers();
  startLimitsMaintenance({
    clock,
    windows: new SlidingWindows(),
    quotas,
    every: t.every,
    onError: (e) => errors.push(e),
  });
  quotas.add(quotas.counter(quota(10, "hour"), "acme", T0), 1);
  t.fire(1000);
  expect(String(errors[0])).toContain("database is locked");
});
