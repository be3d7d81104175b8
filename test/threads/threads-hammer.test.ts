/**
 * Several threads deciding limits on the counters they share, at once, on the same tenant and keys,
 * checked against the exact sliding log: never more than the limit in any window, refusals only
 * when justified (a refusal costs nothing), the quota counted exactly, the concurrency cap never
 * exceeded. The clock is shared and moves with the traffic; nothing waits on wall time.
 */
import { expect, test } from "bun:test";
import { SlotDirectory } from "../../src/threads/directory.ts";
import { createSharedMemory, QUOTA, QUOTA_FIELDS, SharedViews } from "../../src/threads/memory.ts";
import type { FromWorker } from "../../src/threads/protocol.ts";
import { SlidingLog } from "../limits/helpers.ts";
import { CELL, type HammerResult, scenario, T0 } from "./hammer-scenario.ts";

const THREADS = 3;
const REQUESTS = 2500;

async function hammer(seed: number) {
  const memory = createSharedMemory(1 << 12);
  const views = new SharedViews(memory);
  const directory = new SlotDirectory(memory, views);
  const cellsBuffer = new SharedArrayBuffer(16);
  const cells = new Int32Array(cellsBuffer);
  const workers = Array.from(
    { length: THREADS },
    () => new Worker(new URL("./hammer-worker.ts", import.meta.url).href),
  );
  try {
    const results = await Promise.all(
      workers.map(
        (w, thread) =>
          new Promise<HammerResult>((resolve, reject) => {
            w.onerror = (e) => reject(new Error(e.message));
            w.onmessage = (e: MessageEvent<FromWorker | { type: "done"; result: HammerResult }>) => {
              const m = e.data;
              if (m.type === "slots") {
                w.postMessage({
                  type: "slots",
                  id: m.id,
                  granted: directory.grant(m.wants, T0 + cells[CELL.clock]!),
                });
              } else if (m.type === "done") resolve(m.result);
            };
            w.postMessage({ type: "start", memory, cells: cellsBuffer, seed, thread, requests: REQUESTS });
          }),
      ),
    );
    return { results, cells, views, directory };
  } finally {
    for (const w of workers) w.terminate();
  }
}

test("three threads at once on one tenant: limits exact in every window, refusals justified, quota exact, cap held", async () => {
  let admitted = 0;
  const refused: Record<string, number> = {};
  for (let seed = 1; seed <= 4; seed++) {
    const { t, keys, perTenant, perKey } = scenario(seed);
    const { results, cells, views, directory } = await hammer(seed);
    const all = results.flatMap((r) => r.admitted).sort((a, b) => a[0]! - b[0]!);
    const tenantLog = new SlidingLog();
    const keyLogs = keys.map(() => new SlidingLog());
    for (const [at, cost, k] of all) {
      tenantLog.add(at!, cost!);
      keyLogs[k!]!.add(at!, cost!);
    }
    expect(tenantLog.maxInAnyWindow(perTenant.windowMs)).toBeLessThanOrEqual(perTenant.limit);
    for (const log of keyLogs) expect(log.maxInAnyWindow(perKey.windowMs)).toBeLessThanOrEqual(perKey.limit);

    // A refusal found a window full: counting what the last W + b ms admitted (everything decided
    // before it, and maybe more at the same millisecond) with its cost exceeds a limit.
    const widthOf = (w: number) => Math.max(1, Math.ceil(w / 20));
    const quotaLimit = t.quotas[0]!.limit;
    let admittedUnits = 0;
    for (const [at, cost, k, code] of results.flatMap((r) => r.refused)) {
      if (code === "concurrency_limited") continue;
      const justified =
        code === "rate_limited"
          ? tenantLog.sum(at - perTenant.windowMs - widthOf(perTenant.windowMs), at) + cost >
              perTenant.limit ||
            keyLogs[k]!.sum(at - perKey.windowMs - widthOf(perKey.windowMs), at) + cost > perKey.limit
          : tenantLog.sum(T0 - 1, at) + cost > quotaLimit;
      expect({ seed, at, code, justified }).toEqual({ seed, at, code, justified: true });
    }
    for (const [, cost] of all) admittedUnits += cost!;

    // The quota counted exactly what was billed, and never more than its limit.
    const slot = directory.grant([{ kind: "quota", quota: t.quotas[0]!, identity: t.uid }], T0)[0]!;
    const used = views.quotas[slot * QUOTA_FIELDS + QUOTA.used]!;
    expect(used).toBe(results.reduce((n, r) => n + r.billed, 0));
    expect(used).toBeLessThanOrEqual(quotaLimit);
    expect(admittedUnits).toBeGreaterThan(0);

    // Never more in flight than the cap, and every unit given back.
    expect(cells[CELL.maxInFlight]!).toBeLessThanOrEqual(t.concurrency!);
    const cap = directory.grant([{ kind: "cap", identity: t.uid }], T0)[0]!;
    expect(Atomics.load(views.caps, cap)).toBe(0);
    admitted += all.length;
    for (const r of results) for (const [, , , code] of r.refused) refused[code] = (refused[code] ?? 0) + 1;
  }
  expect(admitted).toBeGreaterThan(1000);
  // Every kind of refusal happened, on every kind of counter.
  expect(Object.keys(refused).sort()).toEqual(["concurrency_limited", "quota_exhausted", "rate_limited"]);
});
