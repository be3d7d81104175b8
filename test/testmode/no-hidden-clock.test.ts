/**
 * Test mode promises that one clock drives every policy: nothing may read the real time or start a
 * real timer behind the injected Clock and Scheduler. This scans the source for the ways to do so;
 * each place allowed to is listed with why it does not decide anything a test could observe.
 */
import { expect, test } from "bun:test";
import { Glob } from "bun";

const REAL_TIME =
  /\bDate\.now\(|new Date\(\)|performance\.now\(|\bset(Timeout|Interval|Immediate)\(|Bun\.sleep\(/g;

/** file → [what it may use, why]. */
const allowed: Record<string, [string[], string][]> = {
  "src/lib/clock.ts": [[["Date.now("], "systemClock is the real Clock itself"]],
  "src/lib/scheduler.ts": [[["setTimeout(", "setInterval("], "timerScheduler is the real Scheduler itself"]],
  "src/lib/log.ts": [[["new Date()"], "log lines are stamped with the real time they were written"]],
  "src/app.ts": [
    [["Date.now("], "test mode's clock starts at the real time unless told otherwise"],
    [["performance.now("], "upstream latency is a measured duration, not a time of day"],
    [["setTimeout("], "the shutdown drain deadline is real: it bounds how long the process lingers"],
  ],
  "src/threads/worker.ts": [
    [["performance.now("], "upstream latency is a measured duration; test mode runs on one thread"],
  ],
  "src/config/watch.ts": [[["setTimeout("], "debounces real file-system events"]],
  "src/db/writer-thread.ts": [
    [["setTimeout("], "batches rows for the writer thread, which test mode does not use"],
  ],
  "src/db/writer-worker.ts": [
    [["setInterval("], "the writer thread checks its file every second; test mode does not use it"],
  ],
  "src/usage/retention.ts": [[["setImmediate("], "yields the event loop between delete batches"]],
  "src/testmode/virtual-time.ts": [[["setImmediate("], "lets a task's effects settle before the next"]],
  "src/cli/export.ts": [[["new Date()"], "the CLI stamps its export with the real time it ran"]],
  "src/ui/client/api.ts": [
    [["performance.now("], "the page in the browser counts real time since it read the server's clock"],
  ],
  "src/scenario/run.ts": [
    [["performance.now("], "the report states how long each step took in real time"],
    [["Bun.sleep("], "polls for answers in real time while requests are out"],
  ],
};

test("nothing reads the real clock or starts a real timer behind the injected ones", async () => {
  const root = `${import.meta.dir}/../..`;
  const found: string[] = [];
  for await (const file of new Glob("src/**/*.ts").scan(root)) {
    const text = await Bun.file(`${root}/${file}`).text();
    const ok = new Set((allowed[file] ?? []).flatMap(([uses]) => uses));
    for (const m of text.matchAll(REAL_TIME)) {
      const use = m[0];
      if (![...ok].some((u) => use.startsWith(u.slice(0, -1)))) {
        const line = text.slice(0, m.index).split("\n").length;
        found.push(`${file}:${line} ${use}`);
      }
    }
  }
  expect(found).toEqual([]);
});

test("the list of exceptions names only files that still need them", async () => {
  const root = `${import.meta.dir}/../..`;
  for (const [file, entries] of Object.entries(allowed)) {
    const text = await Bun.file(`${root}/${file}`).text();
    for (const [uses] of entries)
      for (const u of uses) expect(`${file}: ${text.includes(u)}`).toBe(`${file}: true`);
  }
});
