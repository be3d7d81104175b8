/**
 * One thread of threads-hammer.test.ts: requests of one tenant and its keys, as fast as it can, on
 * the counters all threads share, with slots asked of the test's main thread as a data-plane thread
 * asks the gateway's. The clock is shared and moves with every request.
 */
import { prng } from "../../src/lib/prng.ts";
import { LateWork, sharedCounters } from "../../src/threads/counters.ts";
import { createThreadLimitsPolicy } from "../../src/threads/limits.ts";
import { type SharedMemory, SharedViews } from "../../src/threads/memory.ts";
import { SlotAsks, type ToWorker } from "../../src/threads/protocol.ts";
import { SlotCache } from "../../src/threads/slot-cache.ts";
import { ctx, type TestCtx } from "../limits/helpers.ts";
import { CELL, type HammerResult, scenario, T0 } from "./hammer-scenario.ts";

declare const self: Worker;

interface Start {
  type: "start";
  memory: SharedMemory;
  cells: SharedArrayBuffer;
  seed: number;
  thread: number;
  requests: number;
}

let asks: SlotAsks | undefined;

self.onmessage = async (e: MessageEvent<Start | Extract<ToWorker, { type: "slots" }>>) => {
  const m = e.data;
  if (m.type === "slots") {
    asks!.answer(m);
    return;
  }
  const cells = new Int32Array(m.cells);
  let last = 0;
  const clock = { now: () => (last = T0 + Atomics.load(cells, CELL.clock)) };
  const views = new SharedViews(m.memory);
  asks = new SlotAsks((msg) => self.postMessage(msg));
  const cache = new SlotCache(views, asks.ask);
  const late = new LateWork((err) => {
    throw err;
  });
  const policy = createThreadLimitsPolicy({ clock, cache, counters: sharedCounters(cache, late), late });
  const { t, keys } = scenario(m.seed);
  const rnd = prng(m.seed * 100 + m.thread);
  const result: HammerResult = { admitted: [], refused: [], billed: 0 };
  const held: { c: TestCtx; until: number; cost: number }[] = [];

  const finish = (h: { c: TestCtx; cost: number }) => {
    const billed = rnd() < 0.1 ? 0 : h.cost;
    result.billed += billed;
    // Out of the test's count first: it may never exceed the cap, which counts it longer.
    Atomics.sub(cells, CELL.inFlight, 1);
    h.c.finish({ endedAt: clock.now(), cost: h.cost, billed });
  };

  for (let i = 0; i < m.requests; i++) {
    Atomics.add(cells, CELL.clock, Math.floor(rnd() * 4));
    for (let j = held.length - 1; j >= 0; j--) if (held[j]!.until <= i) finish(held.splice(j, 1)[0]!);
    const k = Math.floor(rnd() * keys.length);
    const cost = rnd() < 0.8 ? 1 : 2;
    const c = ctx(t, keys[k]!, cost, clock.now());
    let refusal = policy.check(c);
    if (refusal instanceof Promise) refusal = await refusal;
    if (refusal) {
      result.refused.push([last, cost, k, refusal.code]);
      continue;
    }
    result.admitted.push([last, cost, k]);
    const n = Atomics.add(cells, CELL.inFlight, 1) + 1;
    let max = Atomics.load(cells, CELL.maxInFlight);
    while (n > max) {
      const seen = Atomics.compareExchange(cells, CELL.maxInFlight, max, n);
      if (seen === max) break;
      max = seen;
    }
    // Held for up to 40 of this thread's requests: long enough that one thread alone meets the
    // concurrency cap, however the threads happen to interleave (a loaded machine runs them in turn).
    held.push({ c, until: i + Math.floor(rnd() * 40), cost });
  }
  for (const h of held.splice(0)) finish(h);
  await policy.settled();
  self.postMessage({ type: "done", result });
};
