import { expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import type { Scheduler } from "../../src/lib/scheduler.ts";
import {
  MemoryQuotaStore,
  QuotaCounters,
  type QuotaStore,
  SlidingWindows,
  startLimitsMaintenance,
} from "../../src/policies/limits/index.ts";
import { limit, quota, T0 } from "./helpers.ts";

/** A scheduler the test drives by hand: `fire(ms)` runs the periodic task of that period. */
function manualTimers() {
  const timers = new Map<number, () => unknown>();
  const scheduler: Scheduler = {
    every: (ms, fn) => {
      timers.set(ms, fn);
      return () => timers.delete(ms);
    },
    after: () => {
      throw new Error("maintenance only uses periodic timers");
    },
  };
  return { scheduler, fire: (ms: number) => timers.get(ms)?.(), timers };
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
    scheduler: t.scheduler,
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
    scheduler: t.scheduler,
    onError: (e) => errors.push(e),
  });
  quotas.add(quotas.counter(quota(10, "hour"), "acme", T0), 1);
  t.fire(1000);
  expect(String(errors[0])).toContain("database is locked");
});
