import { describe, expect, test } from "bun:test";
import { openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { silentLog } from "../../src/lib/log.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";
import { UsageRetention } from "../../src/usage/retention.ts";
import { HOUR, MIN, row, store, T0 } from "./helpers.ts";

const DAY = 24 * HOUR;

function setup(retentionMs: number, batchRows = 3) {
  const db = openDb(":memory:");
  const clock = new ManualClock(T0 + 10 * DAY);
  const scheduler = new ManualScheduler(() => clock.now());
  let yields = 0;
  const retention = new UsageRetention({
    sqlite: db.sqlite,
    clock,
    log: silentLog,
    retentionMs,
    batchRows,
    scheduler,
    yieldNow: async () => {
      yields++;
    },
  });
  return { db, clock, scheduler, retention, yields: () => yields };
}

const ids = (db: ReturnType<typeof openDb>) =>
  db.sqlite.query("SELECT request_id FROM usage ORDER BY ts, id").values().flat();

describe("retention", () => {
  test("removes exactly the rows older than the retention, in batches with yields between", async () => {
    const s = setup(7 * DAY, 3);
    const cutoff = T0 + 3 * DAY;
    const old = Array.from({ length: 10 }, (_, i) =>
      row({ ts: cutoff - 1 - i * MIN, requestId: `old-${i}` }),
    );
    const kept = [
      row({ ts: cutoff, requestId: "at-cutoff" }),
      row({ ts: cutoff + DAY, requestId: "recent" }),
    ];
    store(s.db, [...old, ...kept]);
    const result = await s.retention.sweep();
    expect(result.usage).toBe(10);
    expect(ids(s.db)).toEqual(["at-cutoff", "recent"]);
    // 10 rows in batches of 3: 3, 3, 3, 1 → a yield after each full batch.
    expect(s.yields()).toBeGreaterThanOrEqual(3);
  });

  test("removes a rollup only when its whole period is older than the cutoff", async () => {
    const s = setup(7 * DAY, 1000);
    const cutoff = T0 + 3 * DAY; // a whole hour
    // One row 30 s before the cutoff: its minute ends before the cutoff, its hour ends at the cutoff.
    // One row 30 s after: minute and hour both reach past the cutoff.
    store(s.db, [row({ ts: cutoff - 30_000 }), row({ ts: cutoff + 30_000 })]);
    const before = s.db.sqlite.query("SELECT count(*) AS n FROM usage_rollup").get() as { n: number };
    // Per row and grain: the tenant's 4 dimensions and the 3 all-tenant ones.
    expect(before.n).toBe(28);
    const result = await s.retention.sweep();
    expect(result.rollups).toBe(14);
    const left = s.db.sqlite
      .query("SELECT DISTINCT grain, start FROM usage_rollup ORDER BY grain, start")
      .all() as { grain: number; start: number }[];
    expect(left).toEqual([
      { grain: MIN, start: cutoff },
      { grain: HOUR, start: cutoff },
    ]);
  });

  test("0 keeps everything and schedules nothing", async () => {
    const s = setup(0);
    store(s.db, [row({ ts: T0 })]);
    s.retention.start();
    expect(s.scheduler.pending).toBe(0);
    expect(await s.retention.sweep()).toEqual({ usage: 0, rollups: 0 });
    expect(ids(s.db)).toHaveLength(1);
  });

  test("the timer sweeps and re-arms itself; stop() ends it", async () => {
    const s = setup(7 * DAY);
    store(s.db, [row({ ts: T0 })]);
    s.retention.start();
    s.clock.advance(60_000);
    s.scheduler.runDue();
    await s.retention.sweep(); // joins the sweep the timer started
    expect(ids(s.db)).toHaveLength(0);
    // Re-arming happens in the sweep's finally handler, a few microtasks later.
    for (let i = 0; i < 10 && s.scheduler.pending === 0; i++) await Promise.resolve();
    expect(s.scheduler.pending).toBe(1);
    await s.retention.stop();
    expect(s.scheduler.pending).toBe(0);
  });

  test("after stop() no further batch touches the database, so it can be closed at once", async () => {
    const s = setup(7 * DAY, 2);
    store(
      s.db,
      Array.from({ length: 10 }, (_, i) => row({ ts: T0 + i })),
    );
    const sweeping = s.retention.sweep(); // runs its first batch, then yields
    void s.retention.stop();
    s.db.close();
    expect((await sweeping).usage).toBe(2);
  });
});
