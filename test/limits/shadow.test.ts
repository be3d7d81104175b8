/** Shadow limits and quotas in the limits policy: judged and counted, never refusing. */
import { describe, expect, test } from "bun:test";
import { ctx, key, limit, quota, setup, tenant } from "./helpers.ts";

describe("shadow limits and quotas", () => {
  test("never refuse; count only what they would have admitted; record what they would refuse", () => {
    const { policy, windows, quotas, clock } = setup();
    const t = tenant({
      limits: [limit(2, 60_000, { name: "new", shadow: true }), limit(4, 60_000, { name: "old" })],
      quotas: [quota(3, "day", { name: "daily", shadow: true })],
    });
    const k = key();
    const wouldRefuse: (string[] | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const c = ctx(t, k, 1, clock.now());
      const r = policy.check(c);
      wouldRefuse.push(r ? [`refused:${r.code}`] : c.wouldRefuse);
    }
    expect(wouldRefuse).toEqual([
      null,
      null,
      ["rate_limited"],
      ["rate_limited", "quota_exhausted"],
      ["refused:rate_limited"],
    ]);
    const now = clock.now();
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, now), now)).toBe(2);
    expect(windows.used(windows.slot(t.limits[1]!, t.uid, now), now)).toBe(4);
    expect(quotas.counter(t.quotas[0]!, t.uid, now).used).toBe(3);
  });

  test("are not advertised in RateLimit headers", () => {
    const { policy } = setup();
    const t = tenant({
      limits: [limit(2, 60_000, { name: "new", shadow: true }), limit(4, 60_000, { name: "old" })],
      quotas: [quota(3, "day", { name: "daily", shadow: true })],
    });
    const c = ctx(t, key(), 1);
    expect(policy.check(c)).toBeUndefined();
    expect(c.responseHeaders.get("ratelimit-policy")).toBe('"old";q=4;w=60');
    expect(c.responseHeaders.get("ratelimit")).toBe('"old";r=3;t=63');
    // Nothing but shadows: no fields at all.
    const only = ctx(
      tenant({ id: "globex", limits: [limit(1, 1000, { name: "s", shadow: true })] }),
      key(),
      1,
    );
    expect(policy.check(only)).toBeUndefined();
    expect(only.responseHeaders.has("ratelimit")).toBe(false);
  });

  test("switched to enforce, a limit carries on from its shadow count", () => {
    const { policy } = setup();
    const shadow = tenant({ limits: [limit(2, 60_000, { name: "new", shadow: true })] });
    for (let i = 0; i < 3; i++) expect(policy.check(ctx(shadow, key(), 1))).toBeUndefined();
    const enforced = tenant({ limits: [limit(2, 60_000, { name: "new" })] });
    expect(policy.check(ctx(enforced, key(), 1))?.code).toBe("rate_limited");
  });

  test("explain shows each shadow's mode, what it would do, and the codes it would refuse with", () => {
    const { policy } = setup();
    const t = tenant({
      limits: [limit(1, 60_000, { name: "new", shadow: true }), limit(10, 60_000, { name: "old" })],
    });
    expect(policy.check(ctx(t, key(), 1))).toBeUndefined();
    const e = policy.explain(t, key(), 1);
    expect(e.refusal).toBeUndefined();
    expect(e.wouldRefuse).toEqual(["rate_limited"]);
    expect(e.counters.map((c) => [c.name, c.mode, c.refuses, c.adds])).toEqual([
      ["new", "shadow", true, 0],
      ["old", "enforce", false, 1],
    ]);
  });
});
