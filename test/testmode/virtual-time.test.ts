import { expect, test } from "bun:test";
import { ClockMovedBackwards, VirtualTime } from "../../src/testmode/virtual-time.ts";

const T0 = Date.UTC(2027, 0, 31, 23, 59, 0);

test("tasks run in due order, each seeing its own due time, and nothing past the target runs", async () => {
  const time = new VirtualTime(T0);
  const seen: [string, number][] = [];
  time.after(3000, () => seen.push(["c", time.now() - T0]));
  time.after(1000, () => seen.push(["a", time.now() - T0]));
  time.after(1000, () => seen.push(["b", time.now() - T0]));
  time.after(10_000, () => seen.push(["late", time.now() - T0]));
  await time.advance(5000);
  expect(seen).toEqual([
    ["a", 1000],
    ["b", 1000],
    ["c", 3000],
  ]);
  expect(time.now()).toBe(T0 + 5000);
  expect(time.nextOneShot()).toBe(T0 + 10_000);
});

test("a task scheduled by a task runs in the same move when it falls due within it", async () => {
  const time = new VirtualTime(T0);
  const seen: number[] = [];
  time.after(100, () => {
    seen.push(time.now() - T0);
    time.after(100, () => seen.push(time.now() - T0));
  });
  await time.advance(250);
  expect(seen).toEqual([100, 200]);
});

test("periodic maintenance runs once per stretch between one-shot tasks, at the last due time", async () => {
  const time = new VirtualTime(T0);
  const flushes: number[] = [];
  time.every(1000, () => flushes.push(time.now() - T0));
  const oneShots: number[] = [];
  time.after(10_500, () => oneShots.push(time.now() - T0));
  await time.advance(31 * 86_400_000);
  // Once before the one-shot task (at its last due time before it), once after, at the end.
  expect(oneShots).toEqual([10_500]);
  expect(flushes).toEqual([10_000, 31 * 86_400_000]);
  // And it keeps its period afterwards.
  await time.advance(1000);
  expect(flushes.at(-1)).toBe(31 * 86_400_000 + 1000);
});

test("a task's promise is awaited before the next task runs", async () => {
  const time = new VirtualTime(T0);
  const seen: string[] = [];
  time.after(10, async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    seen.push("slow done");
  });
  time.after(20, () => seen.push("next"));
  await time.advance(30);
  expect(seen).toEqual(["slow done", "next"]);
});

test("the clock never moves backwards; a refused move changes nothing and later moves still run", async () => {
  const time = new VirtualTime(T0);
  await expect(time.set(T0 - 1)).rejects.toBeInstanceOf(ClockMovedBackwards);
  await expect(time.advance(-5)).rejects.toBeInstanceOf(ClockMovedBackwards);
  expect(time.now()).toBe(T0);
  await time.set(T0 + 60_000);
  expect(time.now()).toBe(T0 + 60_000);
});

test("moves are serialized: the second starts where the first ended", async () => {
  const time = new VirtualTime(T0);
  const seen: number[] = [];
  time.after(1500, () => seen.push(time.now() - T0));
  const first = time.advance(1000);
  const second = time.advance(1000);
  await Promise.all([first, second]);
  expect(time.now()).toBe(T0 + 2000);
  expect(seen).toEqual([1500]);
});

test("a task that throws is reported and the move goes on", async () => {
  const errors: unknown[] = [];
  const time = new VirtualTime(T0, (err) => errors.push(err));
  const seen: string[] = [];
  time.after(1, () => {
    throw new Error("boom");
  });
  time.after(2, () => seen.push("after"));
  await time.advance(10);
  expect(String(errors[0])).toContain("boom");
  expect(seen).toEqual(["after"]);
});

test("a cancelled task never runs", async () => {
  const time = new VirtualTime(T0);
  let ran = false;
  const cancel = time.after(5, () => {
    ran = true;
  });
  cancel();
  await time.advance(10);
  expect(ran).toBe(false);
});

test("timers of requests in flight are told apart from maintenance", async () => {
  const time = new VirtualTime(T0);
  time.every(1000, () => {});
  time.after(200, () => {});
  expect(time.requestTimers).toBe(0);
  const cancel = time.requests.after(5000, () => {});
  expect(time.requestTimers).toBe(1);
  expect(time.nextRequestTimer()).toBe(T0 + 5000);
  cancel();
  expect(time.requestTimers).toBe(0);
  expect(time.nextRequestTimer()).toBeNull();
});
