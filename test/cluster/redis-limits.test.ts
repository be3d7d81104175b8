/**
 * Limits decided in Redis (cluster.redis), against a real redis-server: the same decisions as the
 * in-process policy, the one-node guarantees across several nodes, concurrency leases, and what
 * happens while Redis is unreachable.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { Refusal } from "../../src/gateway/refusal.ts";
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
  SlidingLog,
  seen,
  T0,
  type TestCtx,
  tenant,
} from "../limits/helpers.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";
import { freshPrefix, startNode, type TestNode } from "./redis-support.ts";

let redis: TestRedis;
const nodes: TestNode[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const n of nodes) await n.shared.stop();
  await redis.stop();
});

async function node(clock: ManualClock, prefix: string, opts: Parameters<typeof startNode>[2] | object = {}) {
  const n = await startNode(redis.url, clock, { prefix, ...opts });
  nodes.push(n);
  return n;
}

/**
 * Every window hash under `prefix` keeps its summary true: `t` the units of all bucket fields, none
 * below `lo`, `h` the newest bucket with units. Decisions read only the summary.
 */
async function expectSummariesTrue(prefix: string) {
  const client = new RedisClient(redis.url);
  try {
    for (const key of (await client.send("KEYS", [`${prefix}*:w:*`])) as string[]) {
      const fields = (await client.send("HGETALL", [key])) as Record<string, string>;
      const buckets = Object.entries(fields)
        .filter(([f]) => !["w", "t", "lo", "h"].includes(f))
        .map(([f, v]) => [Number(f), Number(v)] as const);
      const summary = { t: Number(fields.t), lo: Number(fields.lo), h: Number(fields.h) };
      expect({ key, ...summary }).toEqual({
        key,
        t: buckets.reduce((n, [, v]) => n + v, 0),
        lo: Math.min(summary.lo, ...buckets.map(([k]) => k)),
        h: Math.max(...buckets.filter(([, v]) => v > 0).map(([k]) => k)),
      });
    }
  } finally {
    client.close();
  }
}

const SEEDS = Number(process.env.SEEDS ?? 40);

describe("one node deciding in Redis", () => {
  test("decides every request exactly as the in-process policy: refusals, details, RateLimit fields, Retry-After, shadows, settlements", async () => {
    let compared = 0;
    let refusals = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rnd = prng(seed);
      const clock = new ManualClock(T0 + Math.floor(rnd() * 10_000_000));
      const local = createLimitsPolicy({
        clock,
        windows: new SlidingWindows(),
        quotas: new QuotaCounters(new MemoryQuotaStore(), clock),
        concurrency: new ConcurrencyGate(),
      });
      // Leases that outlast the test: in one process a slot never expires (expiry is tested below).
      const prefix = freshPrefix();
      const shared = await node(clock, prefix, { leaseMs: 1000 * 86_400_000 });
      let { t, keys } = randomViews(rnd);
      const inFlight: { a: TestCtx; b: TestCtx; cost: number }[] = [];
      for (let i = 0; i < 120; i++) {
        clock.advance(rnd() < 0.05 ? Math.floor(rnd() * 4_000_000) : Math.floor(rnd() * 400));
        // End some requests in flight: a measured cost, maybe a failure that is not billed.
        while (inFlight.length > 0 && rnd() < 0.5) {
          const { a, b, cost } = inFlight.splice(Math.floor(rnd() * inFlight.length), 1)[0]!;
          const final = cost + (rnd() < 0.5 ? Math.floor(rnd() * 6) : 0);
          const outcome = { endedAt: clock.now(), cost: final, billed: rnd() < 0.2 ? 0 : final };
          a.finish(outcome);
          b.finish(outcome);
          await shared.shared.idle();
        }
        if (rnd() < 0.03) {
          // A reload changes the limits under live counters (their names stay; windows: see below).
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
        const rb = await shared.shared.policy.check(b);
        const info = { seed, i };
        expect({ ...info, ...seen(rb, b) }).toEqual({ ...info, ...seen(ra, a) });
        compared++;
        if (ra) refusals++;
        else inFlight.push({ a, b, cost });
      }
      for (const { a, b, cost } of inFlight) {
        a.finish({ endedAt: clock.now(), cost, billed: cost });
        b.finish({ endedAt: clock.now(), cost, billed: cost });
      }
      await shared.shared.idle();
    }
    expect(compared).toBe(SEEDS * 120);
    expect(refusals).toBeGreaterThan(compared / 10);
  });

  test("explain judges without counting, as the in-process policy explains", async () => {
    const clock = new ManualClock(T0);
    const shared = await node(clock, freshPrefix());
    const local = createLimitsPolicy({
      clock,
      windows: new SlidingWindows(),
      quotas: new QuotaCounters(new MemoryQuotaStore(), clock),
      concurrency: new ConcurrencyGate(),
    });
    const t = tenant({
      limits: [limit(3, 1000, { name: "w" }), limit(1, 1000, { name: "s", shadow: true })],
      quotas: [quota(5, "day")],
      concurrency: 2,
    });
    const k = key();
    for (let i = 0; i < 4; i++) {
      const e1 = local.explain(t, k, 1);
      const e2 = await shared.shared.policy.explain(t, k, 1);
      expect({ ...e2, store: undefined }).toEqual({ ...e1, store: undefined });
      expect(e2.store).toEqual({ decidedBy: "redis", nodes: 1 });
      local.check(ctx(t, k));
      await shared.shared.policy.check(ctx(t, k));
    }
  });
});

describe("several nodes sharing Redis", () => {
  test("concurrent bursts from three nodes: never more than the limit in any window; refusals only when justified, and cost nothing", async () => {
    let checked = 0;
    let refused = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const rnd = prng(100 + seed);
      const clock = new ManualClock(T0 + Math.floor(rnd() * 1_000_000));
      const prefix = freshPrefix();
      const three = [await node(clock, prefix), await node(clock, prefix), await node(clock, prefix)];
      const l = limit(pick(rnd, [3, 10, 25]), pick(rnd, [100, 1000, 5000]), { name: "w" });
      // A second, wider limit: a request it refuses must cost nothing in the first.
      const wide = limit(l.limit * 3, l.windowMs * 4, { name: "wide" });
      const t = tenant({ limits: [l, wide] });
      const k = key();
      const log = new SlidingLog();
      const wideLog = new SlidingLog();
      const b = Math.max(1, Math.ceil(l.windowMs / 20));
      for (let round = 0; round < 40; round++) {
        clock.advance(Math.floor(rnd() * (l.windowMs / 2)));
        const now = clock.now();
        const burst = Array.from({ length: 1 + Math.floor(rnd() * l.limit) }, () => ({
          on: pick(rnd, three),
          cost: rnd() < 0.8 ? 1 : 2,
        }));
        const results = await Promise.all(burst.map((r) => r.on.shared.policy.check(ctx(t, k, r.cost, now))));
        burst.forEach((r, i) => {
          if (!results[i]) {
            log.add(now, r.cost);
            wideLog.add(now, r.cost);
          }
        });
        burst.forEach((r, i) => {
          checked++;
          if (!results[i]) return;
          refused++;
          // Refused: what the last W + b ms hold with it (every admission of this burst included,
          // which can only be more than it found) exceeds one of the limits.
          const justified =
            log.sum(now - l.windowMs - b, now) + r.cost > l.limit ||
            wideLog.sum(now - wide.windowMs - Math.ceil(wide.windowMs / 20), now) + r.cost > wide.limit;
          expect({ seed, round, justified }).toEqual({ seed, round, justified: true });
        });
      }
      expect(log.maxInAnyWindow(l.windowMs)).toBeLessThanOrEqual(l.limit);
      expect(wideLog.maxInAnyWindow(wide.windowMs)).toBeLessThanOrEqual(wide.limit);
      await expectSummariesTrue(prefix);
    }
    expect(refused).toBeGreaterThan(checked / 5);
    expect(refused).toBeLessThan(checked);
  });

  test("Retry-After is never early: the same request on another node is refused a second before it and admitted at it", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(200 + seed);
      const clock = new ManualClock(T0 + Math.floor(rnd() * 1_000_000));
      const prefix = freshPrefix();
      const [a, b] = [await node(clock, prefix), await node(clock, prefix)];
      const t = tenant({
        limits: [limit(pick(rnd, [2, 5, 10]), pick(rnd, [999, 1000, 2500, 10_000]), { name: "w" })],
      });
      const k = key();
      let refusal: Refusal | undefined;
      let cost = 1;
      for (let i = 0; i < 1000 && !refusal; i++) {
        clock.advance(Math.floor(rnd() * 60));
        cost = 1 + Math.floor(rnd() * 2);
        refusal = await pick(rnd, [a, b]).shared.policy.check(ctx(t, k, cost));
      }
      expect(refusal?.code).toBe("rate_limited");
      const after = Number(refusal!.headers["Retry-After"]);
      const at = clock.now();
      if (after > 1) {
        clock.set(at + (after - 1) * 1000);
        expect((await b.shared.policy.check(ctx(t, k, cost)))?.code).toBe("rate_limited");
      }
      clock.set(at + after * 1000);
      expect(await a.shared.policy.check(ctx(t, k, cost))).toBeUndefined();
    }
  });

  test("a window changed by a reload carries over what was admitted within the new window", async () => {
    const clock = new ManualClock(T0);
    const a = await node(clock, freshPrefix());
    const short = tenant({ limits: [limit(10, 1000, { name: "w" })] });
    for (let i = 0; i < 6; i++) expect(await a.shared.policy.check(ctx(short, key()))).toBeUndefined();
    clock.advance(1500);
    // Lengthened to a minute: the six units of 1.5 s ago are in it.
    const long = tenant({ limits: [limit(10, 60_000, { name: "w" })] });
    for (let i = 0; i < 4; i++) expect(await a.shared.policy.check(ctx(long, key()))).toBeUndefined();
    expect((await a.shared.policy.check(ctx(long, key())))?.code).toBe("rate_limited");
  });

  test("a quota counts across nodes and a quota refusal costs nothing in the windows", async () => {
    const clock = new ManualClock(T0);
    const prefix = freshPrefix();
    const [a, b] = [await node(clock, prefix), await node(clock, prefix)];
    const t = tenant({ limits: [limit(100, 60_000, { name: "w" })], quotas: [quota(3, "day")] });
    const k = key();
    expect(await a.shared.policy.check(ctx(t, k))).toBeUndefined();
    expect(await b.shared.policy.check(ctx(t, k))).toBeUndefined();
    expect(await a.shared.policy.check(ctx(t, k))).toBeUndefined();
    const refused = await b.shared.policy.check(ctx(t, k));
    expect(refused?.code).toBe("quota_exhausted");
    expect(refused?.headers.RateLimit).toBe('"w";r=97;t=63, "quota-day";r=0;t=86400');
    // Each node's own counters (flushed to its database) follow Redis's count.
    const e = await a.shared.policy.explain(t, k, 1);
    expect(e.counters.map((c) => c.used)).toEqual([3, 3]);
    expect(a.quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(3);
    expect(b.quotas.counter(t.quotas[0]!, t.uid, clock.now()).used).toBe(3);
  });
});

describe("concurrency leases", () => {
  test("shared across nodes, released when a request ends, renewed while it runs, freed when their node dies", async () => {
    const clock = new ManualClock(T0);
    const prefix = freshPrefix();
    const a = await node(clock, prefix, { leaseMs: 9000 });
    const b = await node(clock, prefix, { leaseMs: 9000 });
    const t = tenant({ concurrency: 2 });
    const k = key();
    const first = ctx(t, k);
    expect(await a.shared.policy.check(first)).toBeUndefined();
    expect(await b.shared.policy.check(ctx(t, k))).toBeUndefined();
    expect((await a.shared.policy.check(ctx(t, k)))?.code).toBe("concurrency_limited");
    first.finish();
    await a.shared.idle();
    expect(await b.shared.policy.check(ctx(t, k))).toBeUndefined();
    expect(b.shared.leasesHeld()).toBe(2);

    // 30 s pass: b renews its leases every 3 s, so they hold.
    for (let i = 0; i < 10; i++) {
      clock.advance(3000);
      b.scheduler.runDue();
      await b.shared.idle();
    }
    expect((await a.shared.policy.check(ctx(t, k)))?.code).toBe("concurrency_limited");

    // b dies holding both: nothing renews them, and they run out 9 s after the last renewal.
    await b.shared.stop();
    clock.advance(8999);
    expect((await a.shared.policy.check(ctx(t, k)))?.code).toBe("concurrency_limited");
    clock.advance(1);
    expect(await a.shared.policy.check(ctx(t, k))).toBeUndefined();
  });
});

describe("when Redis is unreachable", () => {
  const t = tenant({ limits: [limit(10, 60_000, { name: "w" })], quotas: [quota(100, "day")] });
  const k = key();
  const admitted = async (n: TestNode, count: number) => {
    let ok = 0;
    for (let i = 0; i < count; i++) if ((await n.shared.policy.check(ctx(t, k))) === undefined) ok++;
    return ok;
  };

  test("local: each node enforces its share alone; Redis's return merges what each counted", async () => {
    const clock = new ManualClock(T0);
    const prefix = freshPrefix();
    const a = await node(clock, prefix);
    const b = await node(clock, prefix);
    await a.shared.probe();
    expect([a.shared.health.nodes, b.shared.health.nodes]).toEqual([2, 2]);
    expect(await admitted(a, 4)).toBe(4);

    await redis.kill();
    try {
      // Half of 10 per minute each, whatever Redis held; no request waits for it.
      expect(await admitted(a, 8)).toBe(5);
      expect(await admitted(b, 8)).toBe(5);
      expect(a.shared.health.healthy).toBe(false);
      expect(a.shared.health.fallbacks.local).toBe(8);
      const e = await a.shared.policy.explain(t, k, 1);
      expect(e.store).toEqual({ decidedBy: "local", nodes: 2 });
      expect(e.counters.map((c) => [c.limit, c.used])).toEqual([
        [5, 5],
        [52, 9],
      ]);
      expect(a.shared.health.describe()).toContain(
        "each node enforces its share of every limit (this one 1/2)",
      );
    } finally {
      await redis.restart();
    }
    // Redis came back empty. a's merge writes its whole count (4 before, 5 alone); b's adds its 5.
    await a.shared.probe();
    await b.shared.probe();
    expect(a.shared.health.healthy).toBe(true);
    expect(a.shared.health.describe()).toBeNull();
    const e = await b.shared.policy.explain(t, k, 1);
    expect(e.store).toEqual({ decidedBy: "redis", nodes: 2 });
    expect(e.counters.map((c) => c.used)).toEqual([10, 14]);
    // The window holds the ten units the nodes admitted alone: full until they leave it.
    expect((await b.shared.policy.check(ctx(t, k)))?.code).toBe("rate_limited");
    clock.advance(63_000);
    expect(await admitted(b, 1)).toBe(1);
  });

  test("open admits without counting; closed refuses with 503; whether Redis hangs (a request waits the timeout, once) or is killed", async () => {
    const clock = new ManualClock(T0);
    const prefix = freshPrefix();
    const open = await node(clock, prefix, { onStoreError: "open", timeoutMs: 300 });
    const closed = await node(clock, prefix, { onStoreError: "closed", timeoutMs: 300 });
    redis.pause();
    try {
      const c = ctx(t, k);
      expect(await open.shared.policy.check(c)).toBeUndefined();
      expect(c.responseHeaders.size).toBe(0);
      expect(await admitted(open, 20)).toBe(20);
      const r = await closed.shared.policy.check(ctx(t, k));
      expect(r?.code).toBe("service_unavailable");
      expect(r?.headers["Retry-After"]).toBe("1");
      // A tenant without limits never asks Redis.
      expect(await closed.shared.policy.check(ctx(tenant({ id: "free" }), k))).toBeUndefined();
      expect(open.shared.health.fallbacks.open).toBe(21);
      expect(open.shared.health.failures.timeout).toBeGreaterThanOrEqual(1);
      expect((await closed.shared.policy.explain(t, k, 1)).store?.decidedBy).toBe("closed");
    } finally {
      redis.resume();
    }
    await open.shared.probe();
    expect(open.shared.health.healthy).toBe(true);
    // Nothing was counted meanwhile but the two calls that timed out: Redis ran them when it woke
    // (counting more, never less, is the safe side).
    expect((await open.shared.policy.explain(t, k, 1)).counters.map((c) => c.used)).toEqual([2, 2]);

    // Killed, the same: nothing waits for a Redis that is gone.
    await redis.kill();
    try {
      expect(await admitted(open, 12)).toBe(12);
      expect((await closed.shared.policy.check(ctx(t, k)))?.code).toBe("service_unavailable");
      expect(open.shared.health.healthy).toBe(false);
      expect(open.shared.health.failures.disconnected).toBeGreaterThanOrEqual(1);
    } finally {
      await redis.restart();
    }
  });
});
