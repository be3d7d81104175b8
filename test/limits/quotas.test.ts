import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/lib/clock.ts";
import {
  ConcurrencyGate,
  createLimitsPolicy,
  MemoryQuotaStore,
  QuotaCounters,
  type QuotaRow,
  type QuotaStore,
  SlidingWindows,
  SqliteQuotaStore,
} from "../../src/policies/limits/index.ts";
import { ctx, key, quota, T0, tenant } from "./helpers.ts";

const DDL =
  "CREATE TABLE quota_usage(scope TEXT NOT NULL, period_start INTEGER NOT NULL, used INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY(scope, period_start))";
const HOUR = 3_600_000;

const dir = mkdtempSync(join(tmpdir(), "gatehouse-quota-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openDb(file: string): Database {
  const db = new Database(file);
  db.run(DDL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"));
  return db;
}

const rows = (db: Database) =>
  db
    .query(
      "SELECT scope, period_start AS periodStart, used, updated_at AS updatedAt FROM quota_usage ORDER BY scope, period_start",
    )
    .all();

describe("quota counters", () => {
  test("count per tenant or per key under scope strings, in cost units", () => {
    const clock = new ManualClock(T0);
    const store = new MemoryQuotaStore();
    const quotas = new QuotaCounters(store, clock);
    const perTenant = quota(100, "day", { name: "daily" });
    const perKey = quota(100, "day", { name: "daily", by: "key" });
    quotas.add(quotas.counter(perTenant, "acme", T0), 3);
    quotas.add(quotas.counter(perKey, "acme-dev", T0), 5);
    quotas.add(quotas.counter(perTenant, "acme", T0), 2);
    expect(quotas.flush()).toBe(2);
    expect(store.get("tenant:acme:plan:daily", T0)).toBe(5);
    expect(store.get("key:acme-dev:plan:daily", T0)).toBe(5);
  });

  test("a new period starts from zero; the old period's final value is still written", () => {
    const clock = new ManualClock(T0 + 10);
    const store = new MemoryQuotaStore();
    const quotas = new QuotaCounters(store, clock);
    const q = quota(10, "hour");
    quotas.add(quotas.counter(q, "acme", T0 + 10), 4);
    const next = quotas.counter(q, "acme", T0 + HOUR);
    expect(next.used).toBe(0);
    expect(next.periodStart).toBe(T0 + HOUR);
    quotas.add(next, 1);
    quotas.flush(T0 + HOUR);
    expect(store.get("tenant:acme:plan:quota-hour", T0)).toBe(4);
    expect(store.get("tenant:acme:plan:quota-hour", T0 + HOUR)).toBe(1);
  });

  test("sweep drops counters whose period ended, keeping their last value for the flush", () => {
    const clock = new ManualClock(T0);
    const store = new MemoryQuotaStore();
    const quotas = new QuotaCounters(store, clock);
    const q = quota(10, "hour");
    quotas.add(quotas.counter(q, "acme", T0), 2);
    quotas.counter(q, "idle", T0);
    expect(quotas.sweep(T0 + HOUR - 1)).toBe(0);
    expect(quotas.sweep(T0 + HOUR)).toBe(2);
    expect(quotas.size).toBe(0);
    quotas.flush(T0 + HOUR);
    expect(store.get("tenant:acme:plan:quota-hour", T0)).toBe(2);
    expect(store.get("tenant:idle:plan:quota-hour", T0)).toBeUndefined();
  });

  test("a failed flush loses nothing: the next one writes it", () => {
    const clock = new ManualClock(T0);
    const inner = new MemoryQuotaStore();
    let fail = true;
    const flaky: QuotaStore = {
      load: (since) => inner.load(since),
      save(rows: readonly QuotaRow[], at: number) {
        if (fail) throw new Error("disk full");
        inner.save(rows, at);
      },
    };
    const quotas = new QuotaCounters(flaky, clock);
    const q = quota(10, "day");
    quotas.add(quotas.counter(q, "acme", T0), 3);
    expect(() => quotas.flush()).toThrow("disk full");
    fail = false;
    expect(quotas.flush()).toBe(1);
    expect(inner.get("tenant:acme:plan:quota-day", T0)).toBe(3);
    expect(quotas.flush()).toBe(0); // nothing changed since
  });

  test("survive a restart through SQLite on a file: no reset, no double count", () => {
    const file = join(dir, "restart.db");
    const q = quota(1000, "month", { name: "monthly" });
    const t = tenant({ quotas: [q] });
    const k = key();

    // First process: 7 units, flushed twice (the second flush must not add them again).
    {
      const db = openDb(file);
      const clock = new ManualClock(T0 + 5 * HOUR);
      const quotas = new QuotaCounters(new SqliteQuotaStore(db), clock);
      quotas.load();
      const { policy } = withQuotas(quotas, clock);
      expect(policy.check(ctx(t, k, 4))).toBeUndefined();
      expect(policy.check(ctx(t, k, 3))).toBeUndefined();
      expect(quotas.flush()).toBe(1);
      expect(quotas.flush()).toBe(0);
      clock.advance(1000);
      expect(policy.check(ctx(t, k, 0))).toBeUndefined();
      quotas.flush();
      expect(rows(db)).toEqual([
        { scope: "tenant:uid-acme:plan:monthly", periodStart: T0, used: 7, updatedAt: T0 + 5 * HOUR },
      ]);
      db.close();
    }
    // Second process, same month: continues from 7.
    {
      const db = openDb(file);
      const clock = new ManualClock(T0 + 9 * HOUR);
      const quotas = new QuotaCounters(new SqliteQuotaStore(db), clock);
      quotas.load();
      const { policy } = withQuotas(quotas, clock);
      const c = ctx(t, k, 2);
      expect(policy.check(c)).toBeUndefined();
      expect(c.responseHeaders.get("ratelimit")).toBe(`"monthly";r=991;t=${31 * 24 * 3600 - 9 * 3600}`);
      quotas.flush();
      quotas.flush();
      expect(rows(db)).toEqual([
        { scope: "tenant:uid-acme:plan:monthly", periodStart: T0, used: 9, updatedAt: T0 + 9 * HOUR },
      ]);
      db.close();
    }
    // Third process, next month: a fresh period; last month's row is left as it was.
    {
      const db = openDb(file);
      const feb = Date.UTC(2026, 1, 1);
      const clock = new ManualClock(feb + HOUR);
      const quotas = new QuotaCounters(new SqliteQuotaStore(db), clock);
      quotas.load();
      const { policy } = withQuotas(quotas, clock);
      expect(policy.check(ctx(t, k, 1))).toBeUndefined();
      quotas.flush();
      expect(rows(db)).toEqual([
        { scope: "tenant:uid-acme:plan:monthly", periodStart: T0, used: 9, updatedAt: T0 + 9 * HOUR },
        { scope: "tenant:uid-acme:plan:monthly", periodStart: feb, used: 1, updatedAt: feb + HOUR },
      ]);
      db.close();
    }
  });

  test("a quota exhausted before a restart stays exhausted after it", () => {
    const db = openDb(":memory:");
    const q = quota(3, "day");
    const t = tenant({ quotas: [q] });
    const clock = new ManualClock(T0 + HOUR);
    const first = new QuotaCounters(new SqliteQuotaStore(db), clock);
    first.load();
    const a = withQuotas(first, clock).policy;
    for (let i = 0; i < 3; i++) expect(a.check(ctx(t, key()))).toBeUndefined();
    expect(a.check(ctx(t, key()))?.code).toBe("quota_exhausted");
    first.flush();
    const second = new QuotaCounters(new SqliteQuotaStore(db), clock);
    second.load();
    expect(withQuotas(second, clock).policy.check(ctx(t, key()))?.code).toBe("quota_exhausted");
  });

  test("the memory store behaves like SQLite: absolute values, filtered by period start", () => {
    for (const store of [new MemoryQuotaStore(), new SqliteQuotaStore(openDb(":memory:"))]) {
      store.save([{ scope: "s", periodStart: 10, used: 4 }], 1);
      store.save([{ scope: "s", periodStart: 10, used: 6 }], 2);
      store.save([{ scope: "s", periodStart: 20, used: 1 }], 3);
      expect(store.load(10).sort((a, b) => a.periodStart - b.periodStart)).toEqual([
        { scope: "s", periodStart: 10, used: 6 },
        { scope: "s", periodStart: 20, used: 1 },
      ]);
      expect(store.load(11)).toEqual([{ scope: "s", periodStart: 20, used: 1 }]);
    }
  });
});

/** A limits policy over the given quota counters. */
function withQuotas(quotas: QuotaCounters, clock: ManualClock) {
  return {
    policy: createLimitsPolicy({
      clock,
      quotas,
      windows: new SlidingWindows(),
      concurrency: new ConcurrencyGate(),
    }),
  };
}
