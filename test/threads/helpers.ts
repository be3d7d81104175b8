import type { Clock } from "../../src/lib/clock.ts";
import { LateWork, sharedCounters } from "../../src/threads/counters.ts";
import { SlotDirectory } from "../../src/threads/directory.ts";
import { createThreadLimitsPolicy } from "../../src/threads/limits.ts";
import { createSharedMemory, type SharedMemory, SharedViews } from "../../src/threads/memory.ts";
import { SlotCache } from "../../src/threads/slot-cache.ts";

/**
 * The limits policy on shared memory, with the directory on this thread answering at once. Given
 * another's memory and directory, it is a second thread on the same counters.
 */
export function threadLimits(
  clock: Clock,
  memory: SharedMemory = createSharedMemory(1 << 16),
  shared?: SlotDirectory,
) {
  const views = new SharedViews(memory);
  const directory = shared ?? new SlotDirectory(memory, views);
  const cache = new SlotCache(views, (wants) => directory.grant(wants, clock.now()));
  const late = new LateWork((err) => {
    throw err;
  });
  const counters = sharedCounters(cache, late);
  const policy = createThreadLimitsPolicy({ clock, cache, counters, late });
  return { memory, views, directory, cache, counters, policy };
}
