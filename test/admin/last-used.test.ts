import { describe, expect, test } from "bun:test";
import { LastUsedTracker } from "../../src/admin/keys/last-used.ts";

describe("LastUsedTracker", () => {
  test("keeps the latest time per key and writes them in one batch", () => {
    const batches: Map<string, number>[] = [];
    const tracker = new LastUsedTracker((b) => batches.push(new Map(b)));
    tracker.record("k1", 20);
    tracker.record("k1", 10);
    tracker.record("k2", 5);
    expect(tracker.flush()).toBe(2);
    expect(batches).toEqual([
      new Map([
        ["k1", 20],
        ["k2", 5],
      ]),
    ]);
    expect(tracker.flush()).toBe(0);
  });

  test("a refused write is reported and its times are kept for the next flush", () => {
    const batches: Map<string, number>[] = [];
    const errors: unknown[] = [];
    let failing = true;
    const tracker = new LastUsedTracker(
      (b) => {
        if (failing) throw new Error("SQLITE_BUSY");
        batches.push(new Map(b));
      },
      (err) => errors.push(err),
    );
    tracker.record("k1", 30);
    expect(tracker.flush()).toBe(0);
    expect(errors).toHaveLength(1);
    failing = false;
    tracker.record("k1", 25);
    expect(tracker.flush()).toBe(1);
    expect(batches).toEqual([new Map([["k1", 30]])]);
  });
});
