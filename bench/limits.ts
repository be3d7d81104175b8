/**
 * Cost of the limits policy on the hot path, next to one Map.get measured in the same run, and memory
 * per counted identity. Run with `bun bench/limits.ts`.
 */
import { heapStats } from "bun:jsc";
import type { CompiledLimit, CompiledQuota } from "../src/gateway/snapshot.ts";
import { ManualClock } from "../src/lib/clock.ts";
import {
  ConcurrencyGate,
  createLimitsPolicy,
  MemoryQuotaStore,
  QuotaCounters,
  SlidingWindows,
} from "../src/policies/limits/index.ts";
import type { RequestContext } from "../src/policies/policy.ts";
import { ctx, key, T0, tenant } from "../test/limits/helpers.ts";

const IDENTITIES = 100_000;
const ids = Array.from({ length: IDENTITIES }, (_, i) => `tenant-${i}`);

// Realistic sizes (the bench never reaches them: ~16 requests/s per tenant of simulated time).
const perSecond: CompiledLimit = {
  name: "1000-per-1s",
  declaredAt: "plans.bench.1000-per-1s",
  counter: "plan:1000-per-1s",
  limit: 1000,
  windowMs: 1000,
  by: "tenant",
  shadow: false,
};
const perMinute: CompiledLimit = {
  name: "20000-per-1m",
  declaredAt: "plans.bench.20000-per-1m",
  counter: "plan:20000-per-1m",
  limit: 20_000,
  windowMs: 60_000,
  by: "tenant",
  shadow: false,
};
const perKey: CompiledLimit = {
  name: "500-per-1s-by-key",
  declaredAt: "plans.bench.500-per-1s-by-key",
  counter: "plan:500-per-1s-by-key",
  limit: 500,
  windowMs: 1000,
  by: "key",
  shadow: false,
};
const monthly: CompiledQuota = {
  name: "quota-month",
  declaredAt: "plans.bench.quota-month",
  counter: "plan:quota-month",
  limit: 1_000_000_000,
  period: "month",
  anchor: 1,
  timezone: "UTC",
  by: "tenant",
  shadow: false,
};

/** Runs `fn` for about `ms` milliseconds after a warm-up; returns ns per call. */
function time(fn: (i: number) => void, ms = 1500): number {
  for (let i = 0; i < 200_000; i++) fn(i);
  let n = 0;
  const start = Bun.nanoseconds();
  const until = start + ms * 1e6;
  while (Bun.nanoseconds() < until) {
    for (let i = 0; i < 10_000; i++) fn(n + i);
    n += 10_000;
  }
  return (Bun.nanoseconds() - start) / n;
}

function heapBytes(): number {
  Bun.gc(true);
  const s = heapStats();
  return s.heapSize; // includes typed-array backing stores (extraMemorySize is a part of it)
}

let sink = 0;

// Baseline: one Map.get over the same identities.
const map = new Map<string, number>(ids.map((id, i) => [id, i]));
const mapNs = time((i) => {
  sink += map.get(ids[i % 1000]!)!;
});

// Core counting: one limit, slot + used + add, as the policy does per limit.
const windows = new SlidingWindows();
const coreClock = { t: T0 };
const coreNs = time((i) => {
  const now = coreClock.t + (i >> 4); // time moves on: buckets roll
  const s = windows.slot(perSecond, ids[i % 1000]!, now);
  if (windows.used(s, now) + 1 <= perSecond.limit) windows.add(s, 1);
});

// What every policy setting two response headers pays to the Headers API, for comparison.
const headers = Array.from({ length: 1000 }, () => new Headers());
const setNs = time((i) => {
  const h = headers[i % 1000]!;
  h.set("ratelimit-policy", `"a";q=10;w=1, "b";q=${i & 1023};w=60`);
  h.set("ratelimit", `"a";r=9;t=1, "b";r=${i & 1023};t=60`);
});

// The whole policy: 2 tenant limits + 1 per-key limit + a monthly quota, headers included.
const clock = new ManualClock(T0);
const policy = createLimitsPolicy({
  clock,
  windows: new SlidingWindows(),
  quotas: new QuotaCounters(new MemoryQuotaStore(), clock),
  concurrency: new ConcurrencyGate(),
});
const ctxs: RequestContext[] = ids
  .slice(0, 1000)
  .map((id) =>
    ctx(
      tenant({ id, name: id, plan: "bench", limits: [perSecond, perMinute, perKey], quotas: [monthly] }),
      key({ id: `${id}-key`, tenantId: id }),
      1,
      T0,
    ),
  );
// Contexts are reused: what a check registers for the response's end (a quota's settlement) is dropped
// rather than piled up across millions of checks.
for (const c of ctxs) c.onDone = () => {};
const policyNs = time((i) => {
  if ((i & 15) === 0) clock.advance(1);
  if (policy.check(ctxs[i % 1000]!) !== undefined) sink++;
});

// Memory per counted identity: one limit's counter for each of 100k identities.
function bytesPer(fill: () => unknown): number {
  const before = heapBytes();
  const held = fill();
  const after = heapBytes();
  sink += held ? 1 : 0;
  return (after - before) / IDENTITIES;
}
const mapBytes = bytesPer(() => new Map<string, number>(ids.map((id, i) => [id, i])));
const windowBytes = bytesPer(() => {
  const w = new SlidingWindows();
  for (const id of ids) w.add(w.slot(perSecond, id, T0), 1);
  return w;
});
const quotaBytes = bytesPer(() => {
  const q = new QuotaCounters(new MemoryQuotaStore(), clock);
  for (const id of ids) q.add(q.counter(monthly, id, T0), 1);
  return q;
});

const f = (n: number) => n.toFixed(1).padStart(8);
console.log(`Map.get baseline          ${f(mapNs)} ns/op   1.0×`);
console.log(`one limit (slot+used+add) ${f(coreNs)} ns/op ${f(coreNs / mapNs)}×`);
console.log(`2 × Headers.set (part of the next line) ${f(setNs)} ns/op ${f(setNs / mapNs)}×`);
console.log(`policy check, 3 limits + quota + headers ${f(policyNs)} ns/op ${f(policyNs / mapNs)}×`);
console.log(`memory per identity: Map<string, number> entry ${f(mapBytes)} B`);
console.log(
  `memory per identity: sliding-window counter    ${f(windowBytes)} B (${f(windowBytes / mapBytes)}× a Map entry)`,
);
console.log(`memory per identity: quota counter             ${f(quotaBytes)} B`);
if (sink === -1) console.log(sink);
