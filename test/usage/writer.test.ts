import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import type { Log } from "../../src/lib/log.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";
import type { UsageRow } from "../../src/usage/row.ts";
import { UsageWriter } from "../../src/usage/writer.ts";
import { countRows, harness, row, T0 } from "./helpers.ts";

describe("UsageWriter", () => {
  test("recording never writes synchronously; reaching flushRows schedules an immediate flush", () => {
    const h = harness({ flushRows: 3, flushIntervalMs: 200 });
    h.writer.record(row());
    h.writer.record(row());
    expect(h.scheduler.runDue()).toBe(0);
    h.writer.record(row());
    expect(countRows(h.db)).toBe(0);
    expect(h.scheduler.runDue()).toBe(1);
    expect(countRows(h.db)).toBe(3);
    expect(h.writer.stats()).toMatchObject({ buffered: 0, written: 3, flushes: 1 });
  });

  test("a lone row is written once flushInterval has passed, not before", () => {
    const h = harness({ flushRows: 100, flushIntervalMs: 200 });
    h.writer.record(row());
    h.clock.advance(199);
    h.scheduler.runDue();
    expect(countRows(h.db)).toBe(0);
    h.clock.advance(1);
    h.scheduler.runDue();
    expect(countRows(h.db)).toBe(1);
    expect(h.scheduler.pending).toBe(0);
  });

  test("the interval counts from the oldest waiting row: later rows do not postpone it", () => {
    const h = harness({ flushRows: 100, flushIntervalMs: 200 });
    h.writer.record(row());
    h.clock.advance(150);
    h.writer.record(row());
    h.clock.advance(50);
    h.scheduler.runDue();
    expect(countRows(h.db)).toBe(2);
  });

  test("a backlog is written one flushRows batch per tick", () => {
    const h = harness({ flushRows: 2, flushIntervalMs: 200 });
    for (let i = 0; i < 5; i++) h.writer.record(row());
    // Each tick writes one batch and schedules the next at once; the lone leftover waits the interval.
    h.scheduler.runDue();
    expect(countRows(h.db)).toBe(4);
    h.clock.advance(200);
    h.scheduler.runDue();
    expect(countRows(h.db)).toBe(5);
    expect(h.writer.stats().flushes).toBe(3);
  });

  test("close() writes every buffered row, beyond one batch, and stops the timer", () => {
    const h = harness({ flushRows: 4, flushIntervalMs: 10_000 });
    for (let i = 0; i < 10; i++) h.writer.record(row());
    expect(h.writer.close()).toEqual({ written: 10, lost: 0 });
    expect(countRows(h.db)).toBe(10);
    expect(h.scheduler.pending).toBe(0);
  });

  test("a row recorded after close is counted as dropped, not thrown", () => {
    const h = harness();
    h.writer.close();
    expect(() => h.writer.record(row())).not.toThrow();
    expect(h.writer.stats().dropped).toBe(1);
  });

  test("flush() writes rows in the order they were recorded", () => {
    const h = harness();
    const ids = Array.from({ length: 5 }, () => row()).map((r) => {
      h.writer.record(r);
      return r.requestId;
    });
    expect(h.writer.flush()).toBe(5);
    const got = h.db.sqlite.query("SELECT request_id FROM usage ORDER BY id").values().flat();
    expect(got).toEqual(ids);
  });
});

describe("when the database fails", () => {
  function failing(bufferRows: number) {
    const clock = new ManualClock(T0);
    const scheduler = new ManualScheduler(() => clock.now());
    const written: UsageRow[] = [];
    let broken = true;
    const logs: string[] = [];
    const log: Log = (level, msg) => logs.push(`${level}: ${msg}`);
    const writer = new UsageWriter({
      write: (rows) => {
        if (broken) throw new Error("SQLITE_FULL: database or disk is full");
        written.push(...rows);
      },
      clock,
      log,
      flushRows: 2,
      flushIntervalMs: 100,
      bufferRows,
      scheduler,
    });
    const heal = () => {
      broken = false;
    };
    return { clock, scheduler, writer, written, logs, heal };
  }

  test("the caller never sees the error; rows stay buffered and are written after recovery", () => {
    const f = failing(100);
    for (let i = 0; i < 3; i++) expect(() => f.writer.record(row())).not.toThrow();
    expect(() => f.scheduler.runDue()).not.toThrow();
    expect(f.writer.flush()).toBe(0);
    expect(f.writer.stats()).toMatchObject({ buffered: 3, written: 0, dropped: 0 });
    expect(f.writer.stats().failedFlushes).toBeGreaterThan(0);
    expect(f.logs.some((l) => l.startsWith("error: database writes failing"))).toBe(true);
    f.heal();
    expect(f.writer.flush()).toBe(3);
    expect(f.written).toHaveLength(3);
    expect(f.writer.stats()).toMatchObject({ buffered: 0, written: 3 });
  });

  test("retries back off instead of hammering the database on every request", () => {
    const f = failing(100);
    f.writer.record(row());
    f.writer.record(row());
    f.scheduler.runDue(); // fails; the next attempt waits the backoff (100ms, then 200ms, ...)
    const failures = f.writer.stats().failedFlushes;
    for (let i = 0; i < 20; i++) f.writer.record(row());
    f.scheduler.runDue();
    expect(f.writer.stats().failedFlushes).toBe(failures);
    f.heal();
    f.clock.advance(100);
    f.scheduler.runDue();
    expect(f.written.length).toBeGreaterThan(0);
  });

  test("past bufferRows the oldest rows are dropped and counted; the newest survive", () => {
    const f = failing(5);
    const rows = Array.from({ length: 8 }, () => row());
    for (const r of rows) f.writer.record(r);
    expect(f.writer.stats()).toMatchObject({ buffered: 5, dropped: 3 });
    f.heal();
    f.writer.flush();
    expect(f.written.map((r) => r.requestId)).toEqual(rows.slice(3).map((r) => r.requestId));
  });

  test("close() reports what it could not write instead of throwing", () => {
    const f = failing(100);
    for (let i = 0; i < 3; i++) f.writer.record(row());
    expect(f.writer.close()).toEqual({ written: 0, lost: 3 });
    expect(f.writer.stats()).toMatchObject({ buffered: 0, dropped: 3 });
    expect(f.logs.some((l) => l.startsWith("error: usage rows lost at shutdown"))).toBe(true);
  });

  test("a row SQLite refuses is dropped alone; the failed batch left nothing behind", () => {
    const h = harness({ flushRows: 10 });
    h.writer.record(row());
    h.writer.flush();
    // The NOT NULL violation on the third row rolls the batch back; its good rows are then written
    // one by one, so each appears exactly once.
    h.writer.record(row());
    h.writer.record(row());
    h.writer.record(row({ method: null as unknown as string }));
    h.writer.record(row());
    expect(h.writer.flush()).toBe(3);
    expect(countRows(h.db)).toBe(4);
    expect(h.writer.stats()).toMatchObject({ buffered: 0, written: 4, dropped: 1 });
    const rollup = h.db.sqlite
      .query("SELECT requests FROM usage_rollup WHERE grain = 60000 AND dim = 'all' AND tenant_id = 'acme'")
      .get() as { requests: number };
    expect(rollup.requests).toBe(4);
  });

  test("a database that lost its table does not throw into the caller either", () => {
    const h = harness({ flushRows: 2 });
    h.db.sqlite.exec("DROP TABLE usage");
    for (let i = 0; i < 3; i++) expect(() => h.writer.record(row())).not.toThrow();
    expect(() => h.scheduler.runDue()).not.toThrow();
    expect(h.writer.flush()).toBe(0);
    expect(h.writer.stats()).toMatchObject({ buffered: 3, written: 0, dropped: 0 });
  });
});
