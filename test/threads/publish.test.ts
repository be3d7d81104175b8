/**
 * "Together": a version takes effect on every data-plane thread at one instant, the main thread's
 * one store, made only once every live thread has built it; a request keeps the snapshot it started
 * with. (gateway-threads.test.ts shows the same through real requests.)
 */
import { expect, test } from "bun:test";
import type { Snapshot } from "../../src/gateway/snapshot.ts";
import { Publication, PublishedSnapshots } from "../../src/threads/publish.ts";

const snapshot = (version: number) => ({ version }) as Snapshot;

test("a version is published only once every live thread has built it, then for all of them at once", async () => {
  let cell = 0;
  const stores: number[] = [];
  const p = new Publication(3, (v) => {
    cell = v;
    stores.push(v);
  });
  // What each thread would serve: the snapshot the one shared cell names.
  const threads = [0, 1, 2].map(() => new PublishedSnapshots(() => cell));
  const build = (i: number, v: number) => {
    threads[i]!.add(snapshot(v));
    p.prepared(i, v);
  };
  for (const i of [0, 1, 2]) build(i, 1);
  expect(stores).toEqual([1]);
  expect(threads.map((t) => t.now().version)).toEqual([1, 1, 1]);

  // Version 2: two threads have built it, the third has not: everyone still serves 1.
  let answered = false;
  const served = p.served(2).then(() => (answered = true));
  build(0, 2);
  build(1, 2);
  await Promise.resolve();
  expect(answered).toBe(false);
  expect(threads.map((t) => t.now().version)).toEqual([1, 1, 1]);
  // The last one builds it: one store, and every thread's next request serves 2.
  const inFlight = threads[1]!.now();
  build(2, 2);
  await served;
  expect(stores).toEqual([1, 2]);
  expect(threads.map((t) => t.now().version)).toEqual([2, 2, 2]);
  // A request that started before keeps its snapshot to its end.
  expect(inFlight.version).toBe(1);

  // Two changes in a row: each is published once the slowest thread has built it, in order.
  build(0, 3);
  build(0, 4);
  build(1, 3);
  build(1, 4);
  build(2, 3);
  build(2, 4);
  expect(stores).toEqual([1, 2, 3, 4]);
  expect(threads.map((t) => t.now().version)).toEqual([4, 4, 4]);
});

test("a thread that is gone is not waited for; a version published before a thread built it is a bug, loudly", () => {
  let cell = 0;
  const p = new Publication(2, (v) => {
    cell = v;
  });
  p.prepared(0, 1);
  p.prepared(1, 1);
  p.prepared(0, 2);
  expect(cell).toBe(1);
  p.gone(1);
  expect(cell).toBe(2);
  const late = new PublishedSnapshots(() => cell);
  late.add(snapshot(1));
  expect(() => late.now()).toThrow("snapshot version 2 was published before this thread built it");
});
