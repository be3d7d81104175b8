import { describe, expect, test } from "bun:test";
import type { CompiledLimit } from "../../src/gateway/snapshot.ts";
import { SlidingWindows } from "../../src/policies/limits/index.ts";
import { ctx, key, limit, prng, SlidingLog, setup, T0, tenant } from "./helpers.ts";

const WINDOWS = [1, 3, 20, 21, 47, 100, 999, 1000, 1001, 60_000];
const LIMITS = [1, 2, 3, 5, 10, 50];
const bucketOf = (w: number) => Math.max(1, Math.ceil(w / 20));

type Arrival = { t: number; cost: number; key: number };

/** Traffic shapes that stress a sliding window: each yields arrivals in non-decreasing time. */
const shapes: Record<string, (rnd: () => number, start: number, w: number, n: number) => Arrival[]> = {
  /** Random gaps around the limit's rate, from a third of it to three times it. */
  poisson(rnd, start, w, n) {
    const mean = (w / n) * (0.3 + rnd() * 3);
    const out: Arrival[] = [];
    let t = start;
    for (let i = 0; i < 400; i++) {
      t += Math.floor(-Math.log(1 - rnd()) * mean);
      out.push({ t, cost: 1, key: rnd() < 0.5 ? 0 : 1 });
    }
    return out;
  },
  /** Bursts just before, at and just after window edges, where fixed windows let 2× through. */
  edges(rnd, start, w, n) {
    const out: Arrival[] = [];
    for (let j = 0; j < 30; j++) {
      const edge = start + j * w;
      for (const at of [edge - 1, edge, edge + 1, edge + Math.floor(w / 2)]) {
        const burst = 1 + Math.floor(rnd() * 2 * n);
        for (let i = 0; i < burst; i++)
          out.push({ t: Math.max(start, at), cost: 1, key: rnd() < 0.5 ? 0 : 1 });
      }
    }
    return out.sort((a, b) => a.t - b.t);
  },
  /** Many requests arriving in the same millisecond. */
  sameMs(rnd, start, w) {
    const out: Arrival[] = [];
    let t = start;
    for (let j = 0; j < 40; j++) {
      t += Math.floor(rnd() * (w / 2 + 1));
      const burst = 1 + Math.floor(rnd() * 20);
      for (let i = 0; i < burst; i++) out.push({ t, cost: 1, key: rnd() < 0.5 ? 0 : 1 });
    }
    return out;
  },
  /** Busy stretches at twice the rate, then silence of random length. */
  onOff(rnd, start, w, n) {
    const out: Arrival[] = [];
    let t = start;
    for (let j = 0; j < 10; j++) {
      for (let i = 0; i < 3 * n; i++) {
        t += Math.floor(rnd() * (w / n));
        out.push({ t, cost: 1, key: rnd() < 0.5 ? 0 : 1 });
      }
      t += Math.floor(rnd() * 2 * w);
    }
    return out;
  },
};

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

/** A random cost: mostly 1, sometimes 0, sometimes several units, rarely more than a limit allows. */
function randomCost(rnd: () => number): number {
  const r = rnd();
  if (r < 0.6) return 1;
  if (r < 0.7) return 0;
  if (r < 0.97) return 2 + Math.floor(rnd() * 4);
  return 60;
}

describe("sliding windows against an exact sliding log", () => {
  test("randomized traffic: never more than the limit in any window, refusals only when justified", () => {
    let checked = 0;
    let refusals = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const rnd = prng(seed);
      const nLimits = 1 + Math.floor(rnd() * 3);
      const limits: CompiledLimit[] = [];
      for (let i = 0; i < nLimits; i++) {
        limits.push(
          limit(pick(rnd, LIMITS), pick(rnd, WINDOWS), { name: `l${i}`, by: rnd() < 0.3 ? "key" : "tenant" }),
        );
      }
      // Key k1 sometimes brings its own limit on top of the tenant's.
      const keyLimits = rnd() < 0.3 ? [limit(pick(rnd, LIMITS), pick(rnd, WINDOWS), { name: "own" })] : [];
      const all = [...limits.map((l) => ({ l, own: false })), ...keyLimits.map((l) => ({ l, own: true }))];
      const t = tenant({ limits });
      const keys = [key({ id: "k1", limits: keyLimits }), key({ id: "k2" })];

      const shapeName = pick(rnd, Object.keys(shapes));
      const driver = pick(rnd, all).l;
      const start = T0 + Math.floor(rnd() * 1_000_000);
      const arrivals = shapes[shapeName]!(rnd, start, driver.windowMs, driver.limit).map((a) => ({
        ...a,
        cost: rnd() < 0.5 ? 1 : randomCost(rnd),
      }));

      const { clock, policy } = setup(start);
      const logs = new Map<string, SlidingLog>();
      const logOf = (i: number, id: string) => {
        const k = `${i}\0${id}`;
        let log = logs.get(k);
        if (!log) {
          log = new SlidingLog();
          logs.set(k, log);
        }
        return log;
      };

      for (const a of arrivals) {
        clock.set(a.t);
        const k = keys[a.key]!;
        const refusal = policy.check(ctx(t, k, a.cost, a.t));
        let mustRefuse = false;
        let mayRefuse = false;
        const touched: SlidingLog[] = [];
        all.forEach(({ l, own }, i) => {
          if (own && k !== keys[0]) return;
          const log = logOf(i, own || l.by === "key" ? k.id : t.id);
          touched.push(log);
          if (a.cost === 0) return;
          if (log.sum(a.t - l.windowMs, a.t) + a.cost > l.limit) mustRefuse = true;
          if (log.sum(a.t - l.windowMs - bucketOf(l.windowMs), a.t) + a.cost > l.limit) mayRefuse = true;
        });
        const ctxInfo = { seed, shapeName, t: a.t - start, cost: a.cost };
        if (mustRefuse)
          expect({ ...ctxInfo, refused: refusal !== undefined }).toEqual({ ...ctxInfo, refused: true });
        if (refusal) {
          refusals++;
          expect({ ...ctxInfo, justified: mayRefuse }).toEqual({ ...ctxInfo, justified: true });
          expect(refusal.code).toBe("rate_limited");
        } else {
          for (const log of touched) log.add(a.t, a.cost);
        }
        checked++;
      }
      all.forEach(({ l }, i) => {
        for (const [k, log] of logs) {
          if (k.startsWith(`${i}\0`)) expect(log.maxInAnyWindow(l.windowMs)).toBeLessThanOrEqual(l.limit);
        }
      });
    }
    // The traffic really did push against the limits.
    expect(checked).toBeGreaterThan(50_000);
    expect(refusals).toBeGreaterThan(checked / 10);
  });

  test("even traffic below 90% of the rate is never refused, for many limits and windows", () => {
    const rnd = prng(7);
    let runs = 0;
    for (const w of [1, 5, 19, 20, 21, 33, 100, 250, 999, 1000, 1001, 60_000, 3_600_000]) {
      for (const n of [1, 2, 3, 5, 10, 60, 100, 1000]) {
        for (const cost of [1, 2, 5]) {
          if (n % cost !== 0) continue;
          for (const f of [0.5, 0.89, 0.8999]) {
            const windows = new SlidingWindows();
            const l = limit(n, w);
            const period = (cost * w) / (f * n); // ms between requests
            const start = T0 + Math.floor(rnd() * 100_000) + rnd();
            const count = Math.min(1500, Math.ceil((4 * n) / cost) + 20);
            for (let i = 0; i < count; i++) {
              const now = Math.floor(start + i * period);
              const s = windows.slot(l, "acme", now);
              const ok = windows.used(s, now) + cost <= n;
              if (!ok)
                expect({ w, n, cost, f, i, refused: true }).toEqual({ w, n, cost, f, i, refused: false });
              windows.add(s, cost);
            }
            runs++;
          }
        }
      }
    }
    expect(runs).toBeGreaterThan(400);
  });

  test("even traffic above the rate is refused (the limit binds at all)", () => {
    const windows = new SlidingWindows();
    const l = limit(10, 1000);
    let admitted = 0;
    for (let i = 0; i < 1000; i++) {
      const now = T0 + i * 50; // 20 per second against 10 per second, for 50 s
      const s = windows.slot(l, "acme", now);
      if (windows.used(s, now) + 1 <= 10) {
        windows.add(s, 1);
        admitted++;
      }
    }
    expect(admitted).toBeLessThanOrEqual(10 * 50 + 10);
    expect(admitted).toBeGreaterThan(10 * 50 * 0.9);
  });
});

describe("Retry-After", () => {
  test("is the tightest whole second: refused one second earlier, admitted exactly at it", () => {
    let tried = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = prng(1000 + seed);
      const limits = [limit(pick(rnd, LIMITS), pick(rnd, [999, 1000, 1500, 3000, 60_000]), { name: "a" })];
      if (rnd() < 0.5) limits.push(limit(pick(rnd, LIMITS), pick(rnd, [1000, 2500, 10_000]), { name: "b" }));
      const t = tenant({ limits });
      const k = key();
      const start = T0 + Math.floor(rnd() * 1_000_000);
      const { clock, policy } = setup(start);
      let now = start;
      // Random history until one request is refused.
      let refusal: ReturnType<typeof policy.check>;
      let cost = 1;
      for (let i = 0; i < 10_000; i++) {
        now += Math.floor(rnd() * 40);
        clock.set(now);
        cost = 1 + Math.floor(rnd() * Math.min(...limits.map((l) => l.limit)));
        refusal = policy.check(ctx(t, k, cost));
        if (refusal) break;
      }
      expect(refusal).toBeDefined();
      const after = Number(refusal!.headers["Retry-After"]);
      expect(after).toBeGreaterThanOrEqual(1);
      if (after > 1) {
        clock.set(now + (after - 1) * 1000);
        expect(policy.check(ctx(t, k, cost))?.code).toBe("rate_limited");
      }
      clock.set(now + after * 1000);
      expect(policy.check(ctx(t, k, cost))).toBeUndefined();
      tried++;
    }
    expect(tried).toBe(300);
  });
});

describe("state", () => {
  test("sweep frees a counter once its window has fully passed, and only then", () => {
    const windows = new SlidingWindows();
    const l = limit(5, 1000); // buckets of 50 ms
    const a = windows.slot(l, "acme", T0 + 10);
    windows.add(a, 3);
    windows.slot(l, "globex", T0 + 10);
    expect(windows.size).toBe(2);
    // The units sit in bucket [T0, T0+50) and are counted until T0 + 50 + 999.
    expect(windows.msUntilEmpty(a, T0 + 10)).toBe(1039);
    expect(windows.sweep(T0 + 1048)).toBe(0);
    expect(windows.used(a, T0 + 1048)).toBe(3);
    expect(windows.sweep(T0 + 1049)).toBe(2);
    expect(windows.size).toBe(0);
    const again = windows.slot(l, "acme", T0 + 1049);
    expect(windows.used(again, T0 + 1049)).toBe(0);
    expect(windows.size).toBe(1);
  });

  test("freed slots are reused, so memory follows the live identities", () => {
    const windows = new SlidingWindows();
    const l = limit(5, 1000);
    for (let round = 0; round < 5; round++) {
      const now = T0 + round * 10_000;
      for (let i = 0; i < 1000; i++) windows.add(windows.slot(l, `t${i}`, now), 1);
      expect(windows.size).toBe(1000);
      expect(windows.sweep(now + 5000)).toBe(1000);
    }
    expect(windows.size).toBe(0);
  });

  test("a window changed mid-way carries over what was admitted", () => {
    const windows = new SlidingWindows();
    const log = new SlidingLog();
    let l = limit(5, 1000, { name: "x" });
    let previous = l.windowMs;
    const rnd = prng(3);
    let now = T0;
    let changes = 0;
    for (let i = 0; i < 20_000; i++) {
      if (i % 500 === 0) {
        previous = l.windowMs;
        l = limit(5, pick(rnd, [20, 333, 1000, 7000]), { name: "x" });
        if (l.windowMs < previous) changes++;
      }
      now += Math.floor(rnd() * 30);
      const s = windows.slot(l, "acme", now);
      if (windows.used(s, now) + 1 <= 5) {
        windows.add(s, 1);
        log.add(now, 1);
        // A narrower window holds over everything admitted before the change too; a wider one over
        // what the old window still remembered (older units were already forgotten).
        expect(log.sum(now - Math.min(l.windowMs, previous), now)).toBeLessThanOrEqual(5);
      }
    }
    expect(changes).toBeGreaterThan(5);
  });

  test("tenant and key identities never share a counter, even with equal ids", () => {
    const windows = new SlidingWindows();
    const l = limit(1, 1000, { name: "x" });
    windows.add(windows.slot(l, "same", T0, false), 1);
    expect(windows.used(windows.slot(l, "same", T0, true), T0)).toBe(0);
    expect(windows.used(windows.slot(l, "same", T0, false), T0)).toBe(1);
  });
});
