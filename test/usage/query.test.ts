import { beforeAll, describe, expect, test } from "bun:test";
import { openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { bucketMiddle, bucketOf } from "../../src/usage/histogram.ts";
import { GROUP_BYS, type GroupBy, UsageQueryError, type UsageReport } from "../../src/usage/query.ts";
import type { UsageRow } from "../../src/usage/row.ts";
import { createUsageService, type UsageService } from "../../src/usage/service.ts";
import { createBatchWriter } from "../../src/usage/store.ts";
import { dataset, exactPercentile, HOUR, MIN, prng, reference, row, store, T0 } from "./helpers.ts";

/** A small dataset whose answers are worked out by hand below. */
const rows: UsageRow[] = [
  row({ ts: T0 + 10_000, keyId: "acme-a", bytesIn: 10, bytesOut: 100, latencyMs: 10 }),
  row({ ts: T0 + 70_000, keyId: "acme-b", bytesIn: 0, bytesOut: 50, latencyMs: 20 }),
  row({
    ts: T0 + 30 * MIN,
    keyId: "acme-a",
    route: "POST /v1/reports/**",
    status: 201,
    cost: 10,
    bytesIn: 500,
    bytesOut: 20,
    latencyMs: 100,
  }),
  row({
    ts: T0 + 30 * MIN + 1,
    keyId: "acme-a",
    route: "POST /v1/reports/**",
    status: 429,
    outcome: "rejected:rate_limited",
    cost: 0,
    bytesOut: 0,
    latencyMs: 1,
    upstreamMs: null,
  }),
  row({
    ts: T0 + HOUR + 5 * MIN,
    tenantId: "globex",
    keyId: "globex-a",
    status: 502,
    outcome: "upstream_error",
    bytesOut: 0,
    latencyMs: 3000,
  }),
  row({
    ts: T0 + HOUR + 5 * MIN,
    tenantId: null,
    keyId: null,
    route: null,
    status: 401,
    outcome: "rejected:unauthorized",
    cost: 0,
    bytesOut: 0,
    latencyMs: 0,
    upstreamMs: null,
  }),
  row({ ts: T0 + 25 * HOUR, keyId: "acme-b", outcome: "client_aborted", bytesOut: 7, latencyMs: 40 }),
  row({ ts: T0 + 2 * HOUR, keyId: "acme-a", bytesOut: 30, latencyMs: 10 }),
];

let usage: UsageService;
beforeAll(() => {
  const db = openDb(":memory:");
  // Two batches, so rollup rows are merged with existing ones as well as created.
  store(db, rows.slice(0, 4));
  store(db, rows.slice(4));
  usage = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0 + 48 * HOUR) });
});

const counts = (r: UsageReport) =>
  r.groups.map((g) => [g.group, g.requests, g.errors, g.costUnits, g.bytesIn, g.bytesOut]);

describe("queryUsage on a known dataset", () => {
  test("groupBy route, one tenant: busiest first", () => {
    const r = usage.queryUsage({ tenant: "acme", from: T0, to: T0 + 26 * HOUR, groupBy: "route" });
    expect(counts(r)).toEqual([
      ["* /v1/**", 4, 1, 4, 10, 187],
      ["POST /v1/reports/**", 2, 1, 10, 500, 20],
    ]);
    expect(r.total).toMatchObject({ requests: 6, errors: 2, costUnits: 14, bytesIn: 510, bytesOut: 207 });
    expect(r.groups[0]!.latencyMs!.max).toBe(40);
  });

  test("groupBy key", () => {
    const r = usage.queryUsage({ tenant: "acme", from: T0, to: T0 + 26 * HOUR, groupBy: "key" });
    expect(counts(r)).toEqual([
      ["acme-a", 4, 1, 12, 510, 150],
      ["acme-b", 2, 1, 2, 0, 57],
    ]);
  });

  test("groupBy status, all tenants, unauthenticated requests included", () => {
    const r = usage.queryUsage({ from: T0, to: T0 + 26 * HOUR, groupBy: "status" });
    expect(r.groups.map((g) => [g.group, g.requests, g.errors])).toEqual([
      ["200", 4, 1],
      ["201", 1, 0],
      ["401", 1, 1],
      ["429", 1, 1],
      ["502", 1, 1],
    ]);
  });

  test("groupBy route puts requests without a route last, as null", () => {
    const r = usage.queryUsage({ from: T0, to: T0 + 2 * HOUR, groupBy: "route" });
    expect(r.groups.map((g) => [g.group, g.requests])).toEqual([
      ["* /v1/**", 3],
      ["POST /v1/reports/**", 2],
      [null, 1],
    ]);
  });

  test("groupBy minute, hour and day bucket by UTC start and skip empty buckets", () => {
    const minute = usage.queryUsage({ from: T0, to: T0 + 2 * MIN, groupBy: "minute" });
    expect(minute.groups.map((g) => [g.group, g.requests])).toEqual([
      ["2026-01-01T00:00:00.000Z", 1],
      ["2026-01-01T00:01:00.000Z", 1],
    ]);
    const hour = usage.queryUsage({ from: T0, to: T0 + 3 * HOUR, groupBy: "hour" });
    expect(hour.groups.map((g) => [g.group, g.requests, g.costUnits])).toEqual([
      ["2026-01-01T00:00:00.000Z", 4, 12],
      ["2026-01-01T01:00:00.000Z", 2, 1],
      ["2026-01-01T02:00:00.000Z", 1, 1],
    ]);
    const day = usage.queryUsage({ from: T0, to: T0 + 48 * HOUR, groupBy: "day" });
    expect(day.groups.map((g) => [g.group, g.requests])).toEqual([
      ["2026-01-01T00:00:00.000Z", 7],
      ["2026-01-02T00:00:00.000Z", 1],
    ]);
  });

  test("from is inclusive and to exclusive, to the millisecond", () => {
    const r = usage.queryUsage({
      tenant: "acme",
      from: T0 + 20_000,
      to: T0 + 30 * MIN + 1,
      groupBy: "status",
    });
    expect(r.groups.map((g) => [g.group, g.requests])).toEqual([
      ["200", 1],
      ["201", 1],
    ]);
    const edge = usage.queryUsage({ from: T0 + 10_000, to: T0 + 10_001, groupBy: "key" });
    expect(edge.total.requests).toBe(1);
  });

  test("percentiles and max of a group", () => {
    const r = usage.queryUsage({ tenant: "acme", from: T0, to: T0 + 26 * HOUR, groupBy: "key" });
    // acme-a latencies: 10, 100, 1, 10 → nearest-rank p50 = 10, p90 = p99 = 100, each reported as the
    // middle of its histogram bucket (10.375, 98.701); the maximum is exact.
    expect(r.groups[0]!.latencyMs).toEqual({ p50: 10.375, p90: 98.701, p99: 98.701, max: 100 });
    expect(round3(bucketMiddle(bucketOf(10)))).toBe(10.375);
  });

  test("groupBy month buckets by UTC calendar month, across month ends, with partial minutes at the edges", () => {
    const db = openDb(":memory:");
    const feb = Date.UTC(2026, 1, 1);
    const mar = Date.UTC(2026, 2, 1);
    store(db, [
      row({ ts: feb - 1, cost: 1 }), // the last millisecond of January
      row({ ts: feb, cost: 2 }),
      row({ ts: feb + 17 * HOUR + 30_123, cost: 3 }),
      row({ ts: mar - 1, cost: 4 }), // 28 days later: still February
      row({ ts: mar, cost: 5 }),
      row({ ts: Date.UTC(2026, 3, 30, 23, 59, 59), cost: 6 }),
    ]);
    const svc = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(Date.UTC(2026, 5, 1)) });
    // From and to cut through minutes, so the edges are read from raw rows and the rest from rollups.
    const r = svc.queryUsage({ from: T0 + 30_000, to: Date.UTC(2026, 4, 1) - 500, groupBy: "month" });
    expect(r.groups.map((g) => [g.group, g.requests, g.costUnits])).toEqual([
      ["2026-01-01T00:00:00.000Z", 1, 1],
      ["2026-02-01T00:00:00.000Z", 3, 9],
      ["2026-03-01T00:00:00.000Z", 1, 5],
      ["2026-04-01T00:00:00.000Z", 1, 6],
    ]);
    expect(r.total.requests).toBe(6);
  });

  test("an impossible range or too many time buckets is refused", () => {
    expect(() => usage.queryUsage({ from: T0, to: T0, groupBy: "route" })).toThrow(UsageQueryError);
    expect(() => usage.queryUsage({ from: T0, to: T0 + 8 * 24 * HOUR, groupBy: "minute" })).toThrow(
      /at most 10080/,
    );
    expect(usage.queryUsage({ from: T0, to: T0 + 7 * 24 * HOUR, groupBy: "minute" }).groups).toHaveLength(6);
  });
});

const round3 = (n: number) => Math.round(n * 1000) / 1000;

describe("rollups answer exactly what the raw rows would", () => {
  const data = dataset(4000, 30, 3);
  let svc: UsageService;
  beforeAll(() => {
    const db = openDb(":memory:");
    for (let i = 0; i < 1000; i += 500) store(db, data.slice(i, i + 500));
    // One large batch summed a few rollup groups at a time: its parts add to the same rollup rows.
    createBatchWriter(db.sqlite, 5)(data.slice(1000));
    svc = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0) });
  });

  const units: Partial<Record<GroupBy, number>> = { minute: MIN, hour: HOUR, day: 24 * HOUR };
  function keyOf(groupBy: GroupBy, r: UsageRow): string | null {
    const unit = units[groupBy];
    if (unit) return new Date(Math.floor(r.ts / unit) * unit).toISOString();
    if (groupBy === "month") return `${new Date(r.ts).toISOString().slice(0, 7)}-01T00:00:00.000Z`;
    if (groupBy === "route") return r.route;
    if (groupBy === "key") return r.keyId;
    return String(r.status);
  }

  function expected(inRange: UsageRow[], groupBy: GroupBy) {
    const groups = new Map<string | null, UsageRow[]>();
    for (const r of inRange) {
      const k = keyOf(groupBy, r);
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    const out = new Map<string | null, unknown>();
    for (const [k, rs] of groups) {
      const lat = rs.map((r) => r.latencyMs);
      const { max, ...sums } = reference(rs);
      const min = Math.min(...lat);
      const p = (q: number) =>
        round3(Math.min(max, Math.max(min, bucketMiddle(bucketOf(exactPercentile(lat, q))))));
      out.set(k, { ...sums, latencyMs: { p50: p(50), p90: p(90), p99: p(99), max } });
    }
    return out;
  }

  test("for random unaligned ranges, every groupBy, with and without a tenant", () => {
    const rand = prng(11);
    for (let i = 0; i < 12; i++) {
      const from = T0 + Math.floor(rand() * 30 * HOUR);
      const to = from + 1 + Math.floor(rand() * 30 * HOUR);
      for (const tenant of [undefined, "acme"]) {
        const inRange = data.filter((r) => r.ts >= from && r.ts < to && (!tenant || r.tenantId === tenant));
        for (const groupBy of GROUP_BYS) {
          const report = svc.queryUsage({ tenant, from, to, groupBy });
          const got = new Map<string | null, unknown>(
            report.groups.map(({ group, upstreamMsMean: _, ...g }) => [group, g]),
          );
          expect(got).toEqual(expected(inRange, groupBy));
          expect(report.total.requests).toBe(inRange.length);
        }
      }
    }
  });

  test("the mean upstream latency covers only requests that reached the upstream", () => {
    const report = svc.queryUsage({ from: T0, to: T0 + 30 * HOUR, groupBy: "status" });
    const reached = data.filter((r) => r.status === 200 && r.upstreamMs !== null);
    const mean = reached.reduce((s, r) => s + r.upstreamMs!, 0) / reached.length;
    expect(report.groups.find((g) => g.group === "200")!.upstreamMsMean).toBeCloseTo(mean, 3);
    expect(report.groups.find((g) => g.group === "401")!.upstreamMsMean).toBeNull();
  });
});
