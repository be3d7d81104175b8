import { describe, expect, test } from "bun:test";
import { RetriedWrites } from "../../src/db/retried-writes.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";

/** A store that refuses writes while `failing` is set and records every batch it accepts. */
function harness() {
  const clock = new ManualClock();
  const scheduler = new ManualScheduler(() => clock.now());
  const written: Map<string, number>[] = [];
  const errors: number[] = [];
  const state = { failing: false };
  const writes = new RetriedWrites<number>(
    (batch) => {
      if (state.failing) throw new Error("SQLITE_BUSY");
      written.push(new Map(batch));
    },
    (held, next) => Math.max(held, next),
    (_err, waiting) => errors.push(waiting),
    1_000,
    scheduler,
  );
  return { clock, scheduler, written, errors, state, writes };
}

describe("RetriedWrites", () => {
  test("a batch is written as it arrives", () => {
    const h = harness();
    h.writes.add([
      ["k1", 10],
      ["k2", 20],
    ]);
    expect(h.written).toEqual([
      new Map([
        ["k1", 10],
        ["k2", 20],
      ]),
    ]);
    expect(h.writes.waiting).toBe(0);
  });

  test("a refused batch is kept, merged with what comes next by the newer rule, and written once", () => {
    const h = harness();
    h.state.failing = true;
    h.writes.add([
      ["k1", 30],
      ["k2", 20],
    ]);
    expect(h.errors).toEqual([2]);
    expect(h.writes.waiting).toBe(2);
    h.state.failing = false;
    // k1's older time must not replace the newer one that failed to land.
    h.writes.add([
      ["k1", 10],
      ["k3", 5],
    ]);
    expect(h.written).toEqual([
      new Map([
        ["k1", 30],
        ["k2", 20],
        ["k3", 5],
      ]),
    ]);
  });

  test("a refused batch is retried after the retry delay without new arrivals", () => {
    const h = harness();
    h.state.failing = true;
    h.writes.add([["k1", 1]]);
    h.state.failing = false;
    h.clock.advance(999);
    h.scheduler.runDue();
    expect(h.written).toEqual([]);
    h.clock.advance(1);
    h.scheduler.runDue();
    expect(h.written).toEqual([new Map([["k1", 1]])]);
    expect(h.scheduler.pending).toBe(0);
  });

  test("flush reports whether everything landed; stop drops the rest and says how much", () => {
    const h = harness();
    h.state.failing = true;
    h.writes.add([
      ["k1", 1],
      ["k2", 2],
    ]);
    expect(h.writes.flush()).toBe(false);
    expect(h.writes.stop()).toBe(2);
    expect(h.scheduler.pending).toBe(0);
    expect(h.writes.flush()).toBe(true);
  });
});
