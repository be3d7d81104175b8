/**
 * The limits policy on shared memory (src/threads), on one thread: the same decisions as the
 * in-process policy for the same traffic, while the main thread's directory takes idle slots back
 * and gives them out again, and quota counts reach the database from the directory alone.
 */
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import {
  ConcurrencyGate,
  createLimitsPolicy,
  MemoryQuotaStore,
  QuotaCounters,
  SlidingWindows,
} from "../../src/policies/limits/index.ts";
import {
  ctx,
  key,
  limit,
  measuring,
  pick,
  prng,
  quota,
  randomViews,
  seen,
  T0,
  type TestCtx,
  tenant,
} from "../limits/helpers.ts";
import { threadLimits } from "./helpers.ts";

describe("the limits policy on shared memory", () => {
  test("decides every request exactly as the in-process policy, while slots are taken back and given out again", async () => {
    let compared = 0;
    let refusals = 0;
    let reclaimed = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = prng(seed);
      const clock = new ManualClock(T0 + Math.floor(rnd() * 10_000_000));
      const windows = new SlidingWindows();
      const quotas = new QuotaCounters(new MemoryQuotaStore(), clock);
      const local = createLimitsPolicy({ clock, windows, quotas, concurrency: new ConcurrencyGate() });
      const shared = threadLimits(clock);
      let { t, keys } = randomViews(rnd);
      const inFlight: { a: TestCtx; b: TestCtx; cost: number }[] = [];
      for (let i = 0; i < 150; i++) {
        clock.advance(rnd() < 0.05 ? Math.floor(rnd() * 4_000_000) : Math.floor(rnd() * 400));
        if (rnd() < 0.1) {
          // Both sweep: one thread's counters and the directory's slots.
          windows.sweep(clock.now());
          quotas.sweep(clock.now());
          const r = shared.directory.sweep(clock.now());
          reclaimed += r.windows + r.quotas + r.caps;
          shared.directory.quotaRows();
          shared.cache.prune();
        }
        while (inFlight.length > 0 && rnd() < 0.5) {
          const { a, b, cost } = inFlight.splice(Math.floor(rnd() * inFlight.length), 1)[0]!;
          const final = cost + (rnd() < 0.5 ? Math.floor(rnd() * 6) : 0);
          const outcome = { endedAt: clock.now(), cost: final, billed: rnd() < 0.2 ? 0 : final };
          a.finish(outcome);
          b.finish(outcome);
        }
        if (rnd() < 0.03) {
          // A reload changes the limits under live counters (names stay, so the counters do).
          t = { ...t, limits: t.limits.map((l) => ({ ...l, limit: pick(rnd, [1, 4, 10, 40]) })) };
        }
        const k = pick(rnd, keys);
        const cost = rnd() < 0.1 ? 0 : rnd() < 0.7 ? 1 : 1 + Math.floor(rnd() * 12);
        const a = ctx(t, k, cost, clock.now());
        const b = ctx(t, k, cost, clock.now());
        if (rnd() < 0.4) {
          a.route = measuring;
          b.route = measuring;
        }
        const ra = local.check(a);
        const rb = await shared.policy.check(b);
        const info = { seed, i };
        expect({ ...info, ...seen(rb, b) }).toEqual({ ...info, ...seen(ra, a) });
        if (rnd() < 0.1) {
          const ea = local.explain(t, k, cost);
          const eb = await shared.policy.explain(t, k, cost);
          expect({ ...info, ...eb }).toEqual({ ...info, ...ea });
        }
        compared++;
        if (ra) refusals++;
        else inFlight.push({ a, b, cost });
      }
      for (const { a, b, cost } of inFlight) {
        a.finish({ endedAt: clock.now(), cost, billed: cost });
        b.finish({ endedAt: clock.now(), cost, billed: cost });
      }
    }
    expect(compared).toBe(40 * 150);
    expect(refusals).toBeGreaterThan(compared / 10);
    expect(reclaimed).toBeGreaterThan(20);
  });

  test("a slot taken back goes to a new counter empty; a thread still holding it finds out under the lock and gets a new one", async () => {
    const clock = new ManualClock(T0);
    const shared = threadLimits(clock);
    // A second thread's view of the same memory and directory, with its own cache.
    const other = threadLimits(clock, shared.memory, shared.directory);
    const w = limit(3, 1000, { name: "w" });
    const old = tenant({ id: "old", limits: [w] });
    for (let i = 0; i < 3; i++)
      expect(await other.policy.check(ctx(old, key({ id: "old-key" })))).toBeUndefined();
    expect((await other.policy.check(ctx(old, key({ id: "old-key" }))))?.code).toBe("rate_limited");
    const held = other.cache.window(false, w.counter, old.uid)!;

    // The window empties; the directory takes the slot back and gives it to a tenant created since.
    clock.advance(1100);
    expect(shared.directory.sweep(clock.now()).windows).toBe(1);
    const fresh = tenant({ id: "new", limits: [w] });
    for (let i = 0; i < 3; i++)
      expect(await shared.policy.check(ctx(fresh, key({ id: "new-key" })))).toBeUndefined();
    expect(shared.cache.window(false, w.counter, fresh.uid)!.slot).toBe(held.slot);
    expect((await shared.policy.check(ctx(fresh, key({ id: "new-key" }))))?.code).toBe("rate_limited");

    // The other thread's old handle is stale: the old tenant is counted in a slot of its own again,
    // from nothing (its units left the window), not in the new tenant's.
    expect(other.cache.current("window", held)).toBe(false);
    expect(await other.policy.check(ctx(old, key({ id: "old-key" })))).toBeUndefined();
    expect(other.cache.window(false, w.counter, old.uid)!.slot).not.toBe(held.slot);
    expect((await shared.policy.check(ctx(fresh, key({ id: "new-key" }))))?.code).toBe("rate_limited");
  });

  test("quota counts reach the database from the directory: seeded at start, every change and every ended period written", () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 10, 30));
    const t = tenant({ quotas: [quota(100, "hour")] });
    const k = key();
    const shared = threadLimits(clock);
    // What an earlier run wrote for this hour, and for the hour before (not this period's: ignored).
    const hour = Date.UTC(2026, 0, 1, 10);
    shared.directory.loadSeeds([
      { scope: `tenant:${t.uid}:plan:quota-hour`, periodStart: hour - 3_600_000, used: 90 },
      { scope: `tenant:${t.uid}:plan:quota-hour`, periodStart: hour, used: 7 },
    ]);
    for (let i = 0; i < 3; i++) expect(shared.policy.check(ctx(t, k))).toBeUndefined();
    expect(shared.directory.quotaRows()).toEqual([
      { scope: `tenant:${t.uid}:plan:quota-hour`, periodStart: hour, used: 10 },
    ]);
    expect(shared.directory.quotaRows()).toEqual([]);
    shared.policy.check(ctx(t, k));
    // The hour ends before the main thread writes: the next request rolls the slot, and both the
    // final count of 10:00 and the first of 11:00 are written.
    clock.set(hour + 3_600_000 + 5);
    shared.policy.check(ctx(t, k));
    expect(shared.directory.quotaRows()).toEqual([
      { scope: `tenant:${t.uid}:plan:quota-hour`, periodStart: hour, used: 11 },
      { scope: `tenant:${t.uid}:plan:quota-hour`, periodStart: hour + 3_600_000, used: 1 },
    ]);
    // Taken back only once its period ended and it was written.
    clock.set(hour + 2 * 3_600_000);
    expect(shared.directory.sweep(clock.now()).quotas).toBe(1);
    expect(shared.directory.size.quotas).toBe(0);
  });
});
