/** Deadline lists: each deadline at its own time, one scheduler timer per list, cancels in O(1). */
import { expect, test } from "bun:test";
import { Deadlines } from "../../src/lib/deadlines.ts";
import { ManualScheduler, type Scheduler } from "../../src/lib/scheduler.ts";
import { VirtualTime } from "../../src/testmode/virtual-time.ts";

function setup(exact = false) {
  let now = 0;
  const manual = new ManualScheduler(() => now);
  let timers = 0;
  const scheduler: Scheduler = {
    after: (ms, fn) => {
      timers++;
      return manual.after(ms, fn);
    },
    every: (ms, fn) => manual.every(ms, fn),
  };
  const deadlines = new Deadlines({ scheduler, now: () => now, exact });
  const fired: string[] = [];
  const at = (ms: number) => {
    now = ms;
    manual.runDue();
  };
  return { deadlines, fired, at, timers: () => timers, pending: () => manual.pending };
}

test("each deadline fires at its own time, on one timer per list", () => {
  const { deadlines, fired, at, timers } = setup();
  for (let i = 0; i < 100; i++) {
    at(i);
    deadlines.after(1000, () => fired.push(`a${i}`));
  }
  expect(timers()).toBe(1);
  at(1000);
  expect(fired).toEqual(["a0"]);
  at(1049);
  expect(fired).toHaveLength(50);
  at(1099);
  expect(fired).toHaveLength(100);
  expect(deadlines.pending).toBe(0);
});

test("cancelled deadlines never fire; an emptied list's timer runs out without a task", () => {
  const { deadlines, fired, at, pending } = setup();
  const a = deadlines.after(100, () => fired.push("a"));
  at(10);
  const b = deadlines.after(100, () => fired.push("b"));
  at(20);
  deadlines.after(100, () => fired.push("c"));
  b.cancel();
  a.cancel();
  a.cancel();
  at(100);
  // The timer stayed at a's time: it found nothing due and waits for c.
  expect(fired).toEqual([]);
  at(120);
  expect(fired).toEqual(["c"]);
  const d = deadlines.after(100, () => fired.push("d"));
  d.cancel();
  // Kept, not cancelled: at low load that would cost a timer per request again.
  expect(pending()).toBe(1);
  at(220);
  expect(fired).toEqual(["c"]);
  expect(pending()).toBe(0);
});

test("renew moves a deadline to the list's timeout from now", () => {
  const { deadlines, fired, at } = setup();
  const idle = deadlines.after(50, () => fired.push("idle"));
  at(40);
  idle.renew();
  at(60);
  expect(fired).toEqual([]);
  at(90);
  expect(fired).toEqual(["idle"]);
});

test("lists of different timeouts run side by side", () => {
  const { deadlines, fired, at } = setup();
  deadlines.after(300, () => fired.push("long"));
  deadlines.after(100, () => fired.push("short"));
  at(100);
  expect(fired).toEqual(["short"]);
  at(300);
  expect(fired).toEqual(["short", "long"]);
});

test("exact: the timer always waits for the earliest live deadline (test mode's next timer)", async () => {
  for (const exact of [true, false]) {
    const time = new VirtualTime(0);
    const deadlines = new Deadlines({ scheduler: time.requests, now: () => time.now(), exact });
    const first = deadlines.after(100, () => {});
    await time.advance(30);
    deadlines.after(100, () => {});
    first.cancel();
    // Lazily, the timer stays at the cancelled deadline's time; exactly, it moves to the next one.
    expect(time.nextRequestTimer()).toBe(exact ? 130 : 100);
    expect(time.requestTimers).toBe(1);
  }
});
