/** Costs settled when the response ends (a measured surplus, a failure not billed), in the limits policy. */
import { describe, expect, test } from "bun:test";
import type { CompiledRoute } from "../../src/gateway/snapshot.ts";
import { ctx, key, limit, prng, quota, SlidingLog, setup, T0, tenant } from "./helpers.ts";

/** A route that measures its cost from the response. */
const measuring = { costFrom: { kind: "header", name: "x-units", fallback: 1 } } as unknown as CompiledRoute;
const measured = (c: ReturnType<typeof ctx>) => {
  c.route = measuring;
  return c;
};

describe("post-paid cost", () => {
  test("admitted on the route's cost; the surplus counts at the end; then the next request is refused", () => {
    const { policy, windows, quotas, clock } = setup();
    const t = tenant({ limits: [limit(100, 60_000, { name: "m" })], quotas: [quota(100, "day")] });
    const k = key();
    const used = () => [
      windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now()),
      quotas.counter(t.quotas[0]!, t.uid, clock.now()).used,
    ];
    const a = measured(ctx(t, k, 1, clock.now()));
    expect(policy.check(a)).toBeUndefined();
    expect(used()).toEqual([1, 1]);
    clock.advance(10);
    a.finish({ endedAt: clock.now(), cost: 60, billed: 60 });
    expect(used()).toEqual([60, 60]);

    // 60 + 1 fits: admitted, and its response takes both over their limits.
    const b = measured(ctx(t, k, 1, clock.now()));
    expect(policy.check(b)).toBeUndefined();
    b.finish({ endedAt: clock.now(), cost: 50, billed: 50 });
    expect(used()).toEqual([110, 110]);
    const refused = policy.check(measured(ctx(t, k, 1, clock.now())));
    expect(refused?.code).toBe("quota_exhausted");
    // The RateLimit fields never go below 0 remaining.
    expect(refused?.headers.RateLimit).toContain('"m";r=0');
  });

  test("the measured cost never goes below what admission counted", () => {
    const { policy, windows, quotas, clock } = setup();
    const t = tenant({ limits: [limit(10, 60_000, { name: "m" })], quotas: [quota(10, "day")] });
    const c = measured(ctx(t, key(), 3, clock.now()));
    expect(policy.check(c)).toBeUndefined();
    c.finish({ cost: 3, billed: 3 });
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now())).toBe(3);
    expect(quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(3);
  });

  test("a request not billed gives its quota units back; windows keep them", () => {
    const { policy, windows, quotas, clock } = setup();
    const t = tenant({ limits: [limit(10, 60_000, { name: "m" })], quotas: [quota(10, "day")] });
    const c = ctx(t, key(), 2, clock.now());
    expect(policy.check(c)).toBeUndefined();
    c.finish({ status: 502, outcome: "upstream_error", cost: 2, billed: 0 });
    expect(quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(0);
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now())).toBe(2);
  });

  test("a refund never reaches into a period that began after the request was admitted", () => {
    const { policy, quotas, clock } = setup(T0 + 86_400_000 - 100);
    const t = tenant({ quotas: [quota(10, "day")] });
    const k = key();
    const early = ctx(t, k, 1, clock.now());
    expect(policy.check(early)).toBeUndefined();
    clock.advance(200); // the next day
    expect(policy.check(ctx(t, k, 1, clock.now()))).toBeUndefined();
    early.finish({ endedAt: clock.now(), status: 504, outcome: "upstream_error", cost: 1, billed: 0 });
    expect(quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(1);
    // A surplus, by contrast, counts where the response ended.
    const late = measured(ctx(t, k, 1, clock.now()));
    expect(policy.check(late)).toBeUndefined();
    late.finish({ endedAt: clock.now(), cost: 5, billed: 5 });
    expect(quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(6);
  });

  test("a reload that changes a quota's period while a request is in flight loses no count", () => {
    const { policy, quotas, clock } = setup(T0 + 10 * 86_400_000);
    const k = key();
    const daily = tenant({ quotas: [quota(1000, "day", { name: "q" })] });
    const monthly = tenant({ quotas: [quota(1000, "month", { name: "q" })] });
    const inFlight = measured(ctx(daily, k, 1, clock.now()));
    expect(policy.check(inFlight)).toBeUndefined();
    // The reload: the same quota, now monthly; the next request counts in the month.
    expect(policy.check(ctx(monthly, k, 1, clock.now()))).toBeUndefined();
    inFlight.finish({ endedAt: clock.now(), cost: 10, billed: 10 });
    expect(quotas.counter(monthly.quotas[0]!, monthly.uid, clock.now()).used).toBe(10);
  });

  test("random traffic: admission is judged on everything counted before, surpluses included", () => {
    // Reference: a sliding log of every counted unit, the admitted cost at admission and the surplus
    // at the response's end. A request must be refused when the log's last W ms plus its cost exceed
    // the limit, and may be refused only when the last W + b ms (one bucket more) do.
    let checked = 0;
    let refused = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = prng(seed);
      const windowMs = [100, 1000, 60_000][seed % 3]!;
      const n = [5, 20, 100][Math.floor(seed / 3) % 3]!;
      const bucket = Math.max(1, Math.ceil(windowMs / 20));
      const l = limit(n, windowMs, { name: "w" });
      const t = tenant({ limits: [l] });
      const k = key();
      const { policy, clock } = setup(T0);
      const log = new SlidingLog();
      type Event = { at: number; end?: { c: ReturnType<typeof ctx>; cost: number; surplus: number } };
      const events: Event[] = [];
      let at = T0;
      for (let i = 0; i < 300; i++) {
        at += Math.floor(rnd() * (windowMs / n) * 2);
        events.push({ at });
      }
      events.sort((a, b) => a.at - b.at);
      while (events.length > 0) {
        const e = events.shift()!;
        clock.set(e.at);
        if (e.end) {
          e.end.c.finish({ endedAt: e.at, cost: e.end.cost + e.end.surplus, billed: 0 });
          if (e.end.surplus > 0) log.add(e.at, e.end.surplus);
          continue;
        }
        const cost = 1 + Math.floor(rnd() * 3);
        const c = measured(ctx(t, k, cost, e.at));
        const refusal = policy.check(c);
        const info = { seed, at: e.at - T0, cost };
        if (log.sum(e.at - windowMs, e.at) + cost > n)
          expect({ ...info, refused: !!refusal }).toEqual({ ...info, refused: true });
        checked++;
        if (refusal) {
          refused++;
          expect({ ...info, justified: log.sum(e.at - windowMs - bucket, e.at) + cost > n }).toEqual({
            ...info,
            justified: true,
          });
          continue;
        }
        log.add(e.at, cost);
        // The response ends up to two windows later, costing up to half the limit more.
        const end = e.at + Math.floor(rnd() * 2 * windowMs);
        const surplus = rnd() < 0.3 ? 0 : Math.floor(rnd() * (n / 2));
        const i = events.findIndex((x) => x.at > end);
        events.splice(i < 0 ? events.length : i, 0, { at: end, end: { c, cost, surplus } });
      }
    }
    expect(checked).toBeGreaterThan(5000);
    expect(refused).toBeGreaterThan(checked / 10);
  });
});

describe("post-paid cost and shadows", () => {
  test("a request a shadow would refuse adds no surplus to it at the end", () => {
    const { policy, windows, clock } = setup();
    const t = tenant({ limits: [limit(1, 60_000, { name: "s", shadow: true })] });
    const first = measured(ctx(t, key(), 1, clock.now()));
    expect(policy.check(first)).toBeUndefined();
    first.finish({ cost: 5, billed: 5 });
    const second = measured(ctx(t, key(), 1, clock.now()));
    expect(policy.check(second)).toBeUndefined();
    expect(second.wouldRefuse).toEqual(["rate_limited"]);
    second.finish({ cost: 50, billed: 50 });
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now())).toBe(5);
  });
});
