import { describe, expect, test } from "bun:test";
import { ctx, key, limit, quota, setup, T0, tenant } from "./helpers.ts";

describe("limits policy", () => {
  test("is named limits", () => {
    expect(setup().policy.name).toBe("limits");
  });

  test("tenant limits are shared by all keys; by: key and key-level limits count per key", () => {
    const { policy } = setup();
    const shared = tenant({ limits: [limit(3, 1000, { name: "shared" })] });
    const k1 = key({ id: "k1" });
    const k2 = key({ id: "k2" });
    expect(policy.check(ctx(shared, k1))).toBeUndefined();
    expect(policy.check(ctx(shared, k2))).toBeUndefined();
    expect(policy.check(ctx(shared, k1))).toBeUndefined();
    expect(policy.check(ctx(shared, k2))?.code).toBe("rate_limited");

    const perKey = tenant({ id: "globex", limits: [limit(2, 1000, { name: "each", by: "key" })] });
    for (const k of [k1, k2]) {
      expect(policy.check(ctx(perKey, k))).toBeUndefined();
      expect(policy.check(ctx(perKey, k))).toBeUndefined();
      expect(policy.check(ctx(perKey, k))?.code).toBe("rate_limited");
    }

    // A key's own limit adds to the tenant's and counts only that key's requests.
    const plain = tenant({ id: "initech", limits: [limit(10, 1000, { name: "plan" })] });
    const strict = key({ id: "strict", tenantId: "initech", limits: [limit(1, 1000, { name: "own" })] });
    const loose = key({ id: "loose", tenantId: "initech" });
    expect(policy.check(ctx(plain, strict))).toBeUndefined();
    expect(policy.check(ctx(plain, strict))?.detail).toContain('"own"');
    expect(policy.check(ctx(plain, loose))).toBeUndefined();
  });

  test("a request refused by the second of two limits costs nothing in the first", () => {
    const { policy, windows, clock } = setup();
    const t = tenant({ limits: [limit(10, 1000, { name: "wide" }), limit(1, 1000, { name: "narrow" })] });
    const k = key();
    expect(policy.check(ctx(t, k))).toBeUndefined();
    for (let i = 0; i < 5; i++) expect(policy.check(ctx(t, k))?.code).toBe("rate_limited");
    const wide = windows.slot(t.limits[0]!, t.uid, clock.now());
    expect(windows.used(wide, clock.now())).toBe(1);
  });

  test("a request refused by a quota, or by concurrency, costs nothing anywhere", () => {
    const { policy, windows, quotas, concurrency, clock } = setup();
    const t = tenant({
      limits: [limit(100, 1000, { name: "w" })],
      quotas: [quota(2, "day")],
      concurrency: 1,
    });
    const k = key();
    const first = ctx(t, k);
    expect(policy.check(first)).toBeUndefined();
    // Concurrency refuses: no window or quota units are taken.
    expect(policy.check(ctx(t, k))?.code).toBe("concurrency_limited");
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now())).toBe(1);
    expect(quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(1);
    first.finish();
    // The quota refuses a cost-2 request: the window is untouched and no slot is held.
    const big = ctx(t, k, 2);
    expect(policy.check(big)?.code).toBe("quota_exhausted");
    expect(big.doneCallbacks).toBe(0);
    expect(concurrency.count(t.uid)).toBe(0);
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now())).toBe(1);
    expect(quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(1);
    // And the remaining unit is still there to use.
    expect(policy.check(ctx(t, k, 1))).toBeUndefined();
  });

  test("cost 0 is always admitted and counts nothing; cost above a limit can never pass", () => {
    const { policy, windows, clock } = setup();
    const t = tenant({ limits: [limit(2, 1000, { name: "w" })], quotas: [quota(5, "hour")] });
    const k = key();
    expect(policy.check(ctx(t, k, 2))).toBeUndefined();
    expect(policy.check(ctx(t, k, 1))?.code).toBe("rate_limited");
    expect(policy.check(ctx(t, k, 0))).toBeUndefined();
    expect(policy.check(ctx(t, k, -1))).toBeUndefined(); // never un-counts
    expect(windows.used(windows.slot(t.limits[0]!, t.uid, clock.now()), clock.now())).toBe(2);

    const huge = policy.check(ctx(t, k, 3));
    expect(huge?.code).toBe("rate_limited");
    expect(huge?.detail).toBe(
      'This request costs 3 units, more than rate limit "w" allows (2 per 1s); it can never be admitted.',
    );
    expect(huge?.headers["Retry-After"]).toBeUndefined();
    const overQuota = policy.check(ctx(tenant({ quotas: [quota(5, "hour")] }), k, 6));
    expect(overQuota?.code).toBe("quota_exhausted");
    expect(overQuota?.detail).toContain("can never be admitted");
    expect(overQuota?.headers["Retry-After"]).toBeUndefined();
  });

  test("limits declared in different places never share a counter, whatever their names", () => {
    const { policy, clock } = setup();
    // A plan limit counted per key and the key's own limit, both named "burst" (a checked config
    // has no such pair, but counters must not merge even so): the key's 3 per minute holds.
    const t = tenant({ limits: [limit(60, 1000, { name: "burst", by: "key" })] });
    const k = key({ limits: [limit(3, 60_000, { name: "burst", counter: "key:burst" })] });
    let admitted = 0;
    for (let i = 0; i < 120; i++) {
      if (policy.check(ctx(t, k)) === undefined) admitted++;
      clock.advance(500);
    }
    expect(admitted).toBe(3);

    // Quotas too: an hourly plan quota and the key's own daily one, both named "q".
    const hourly = tenant({ quotas: [quota(100, "hour", { name: "q", by: "key" })] });
    const daily = key({ id: "k2", quotas: [quota(2, "day", { name: "q", by: "key", counter: "key:q" })] });
    expect(policy.check(ctx(hourly, daily))).toBeUndefined();
    expect(policy.check(ctx(hourly, daily))).toBeUndefined();
    expect(policy.check(ctx(hourly, daily))?.code).toBe("quota_exhausted");
  });

  test("a tenant or key created again under a deleted one's id counts from zero", () => {
    const { policy } = setup();
    const limits = [limit(1, 60_000, { name: "w" }), limit(1, 60_000, { name: "each", by: "key" })];
    const quotas = [quota(1, "day", { name: "d" }), quota(1, "day", { name: "dk", by: "key" })];
    const old = tenant({ uid: "acme-1", limits, quotas });
    const oldKey = key({ uid: "acme-dev-1" });
    expect(policy.check(ctx(old, oldKey))).toBeUndefined();
    expect(policy.check(ctx(old, oldKey))?.code).toBe("quota_exhausted");
    // Both deleted, then created again with the same ids: new incarnations.
    expect(policy.check(ctx({ ...old, uid: "acme-2" }, { ...oldKey, uid: "acme-dev-2" }))).toBeUndefined();
    // A new key alone: the tenant's counters still hold (the quota's wait is the longer one).
    expect(policy.check(ctx({ ...old, uid: "acme-2" }, { ...oldKey, uid: "acme-dev-3" }))?.code).toBe(
      "quota_exhausted",
    );
  });

  test("two limits with one counter and identity are counted once per request", () => {
    const { policy } = setup();
    // Views built by hand: a checked config never has two limits with one counter.
    const t = tenant({
      limits: [limit(10, 1000, { name: "10-per-1s" }), limit(10, 1000, { name: "10-per-1s" })],
    });
    for (let i = 0; i < 10; i++) expect(policy.check(ctx(t, key()))).toBeUndefined();
    expect(policy.check(ctx(t, key()))?.code).toBe("rate_limited");
  });

  test("a limit changed mid-window takes effect on the next request", () => {
    const { policy } = setup();
    const k = key();
    const at5 = tenant({ limits: [limit(5, 60_000, { name: "w" })] });
    for (let i = 0; i < 3; i++) expect(policy.check(ctx(at5, k))).toBeUndefined();
    // A reload lowers the limit: 3 are already counted.
    const at3 = tenant({ limits: [limit(3, 60_000, { name: "w" })] });
    expect(policy.check(ctx(at3, k))?.code).toBe("rate_limited");
    // And raises it: the same counts, more room.
    const at10 = tenant({ limits: [limit(10, 60_000, { name: "w" })] });
    for (let i = 0; i < 7; i++) expect(policy.check(ctx(at10, k))).toBeUndefined();
    expect(policy.check(ctx(at10, k))?.code).toBe("rate_limited");
    // Quotas too.
    const q5 = tenant({ quotas: [quota(5, "day")] });
    for (let i = 0; i < 4; i++) expect(policy.check(ctx(q5, k))).toBeUndefined();
    expect(policy.check(ctx(tenant({ quotas: [quota(4, "day")] }), k))?.code).toBe("quota_exhausted");
    expect(policy.check(ctx(tenant({ quotas: [quota(6, "day")] }), k))).toBeUndefined();
  });

  test("concurrency: refused at once beyond the cap; each slot released exactly once", () => {
    const { policy, concurrency } = setup();
    const t = tenant({ concurrency: 2 });
    const k = key();
    const a = ctx(t, k);
    const b = ctx(t, k);
    expect(policy.check(a)).toBeUndefined();
    expect(policy.check(b)).toBeUndefined();
    const c = ctx(t, k);
    const refusal = policy.check(c);
    expect(refusal?.code).toBe("concurrency_limited");
    expect(refusal?.detail).toBe("At most 2 requests may be in flight at once.");
    expect(refusal?.headers["Retry-After"]).toBeUndefined();
    expect(c.doneCallbacks).toBe(0);
    expect(concurrency.count(t.uid)).toBe(2);
    a.finish();
    a.finish(); // a second report of the same request must not free b's slot
    expect(concurrency.count(t.uid)).toBe(1);
    expect(policy.check(ctx(t, k))).toBeUndefined();
    expect(policy.check(ctx(t, k))?.code).toBe("concurrency_limited");
    b.finish();
    expect(concurrency.count(t.uid)).toBe(1);
  });

  test("a tenant with no cap takes no slot", () => {
    const { policy, concurrency } = setup();
    const c = ctx(tenant(), key());
    expect(policy.check(c)).toBeUndefined();
    expect(c.doneCallbacks).toBe(0);
    expect(concurrency.size).toBe(0);
  });

  test("quota refusals wait for the period to reset", () => {
    const { policy, clock } = setup(T0 + 3_600_000 - 1500); // 1.5 s before an hour ends
    const t = tenant({ quotas: [quota(1, "hour")] });
    const k = key();
    expect(policy.check(ctx(t, k))).toBeUndefined();
    const r = policy.check(ctx(t, k));
    expect(r?.code).toBe("quota_exhausted");
    expect(r?.headers["Retry-After"]).toBe("2");
    expect(r?.detail).toBe('Quota "quota-hour" (1 per hour) used up; retry in 2 s.');
    clock.advance(1000);
    expect(policy.check(ctx(t, k))?.code).toBe("quota_exhausted");
    clock.advance(1000);
    expect(policy.check(ctx(t, k))).toBeUndefined();
  });

  test("when a window and a quota both refuse, the longer wait names the refusal", () => {
    const { policy } = setup(T0 + 3_600_000 - 1500);
    const k = key();
    const t = tenant({ limits: [limit(1, 60_000, { name: "minute" })], quotas: [quota(1, "hour")] });
    expect(policy.check(ctx(t, k))).toBeUndefined();
    const r = policy.check(ctx(t, k));
    expect(r?.code).toBe("rate_limited");
    expect(r?.detail).toStartWith('Rate limit "minute" (1 per 1m) reached; retry in 62 s.');
    expect(r?.headers["Retry-After"]).toBe("62");
  });
});

describe("RateLimit headers", () => {
  const t = tenant({
    limits: [limit(10, 1000, { name: "10-per-1s" }), limit(100, 60_000, { name: "100-per-1m" })],
    quotas: [quota(1000, "month", { name: "monthly" })],
  });

  test("admitted: one item per limit and quota, on the response headers", () => {
    const { policy } = setup(T0 + 250);
    const c = ctx(t, key(), 3);
    expect(policy.check(c)).toBeUndefined();
    expect(c.responseHeaders.get("ratelimit-policy")).toBe(
      '"10-per-1s";q=10;w=1, "100-per-1m";q=100;w=60, "monthly";q=1000;w=2678400',
    );
    // 250 ms in, bucket [250, 300) of the 1 s window leaves at 300 + 999 ms; the minute's 3 s
    // bucket [0, 3000) at 3000 + 59 999 ms; January has 31 days.
    expect(c.responseHeaders.get("ratelimit")).toBe(
      '"10-per-1s";r=7;t=2, "100-per-1m";r=97;t=63, "monthly";r=997;t=2678400',
    );
  });

  test("refused: the same fields plus Retry-After, in the refusal and the response headers", () => {
    const { policy } = setup(T0 + 250);
    const k = key();
    expect(policy.check(ctx(t, k, 10))).toBeUndefined();
    const c = ctx(t, k, 1);
    const r = policy.check(c);
    expect(r?.code).toBe("rate_limited");
    expect(r?.headers).toEqual({
      "RateLimit-Policy": '"10-per-1s";q=10;w=1, "100-per-1m";q=100;w=60, "monthly";q=1000;w=2678400',
      RateLimit: '"10-per-1s";r=0;t=2, "100-per-1m";r=90;t=63, "monthly";r=990;t=2678400',
      "Retry-After": "2",
    });
    expect(c.responseHeaders.get("ratelimit")).toBe(r!.headers.RateLimit!);
  });

  test("names are sf-strings; sub-second windows advertise w=1; no limits, no fields", () => {
    const { policy } = setup();
    const odd = tenant({ limits: [limit(5, 500, { name: 'a"b\\c' })] });
    const c = ctx(odd, key());
    policy.check(c);
    expect(c.responseHeaders.get("ratelimit-policy")).toBe('"a\\"b\\\\c";q=5;w=1');
    const none = ctx(tenant(), key());
    expect(policy.check(none)).toBeUndefined();
    expect(none.responseHeaders.has("ratelimit-policy")).toBe(false);
    expect(none.responseHeaders.has("ratelimit")).toBe(false);
  });
});
