/** Nodes of a cluster in one process: each its own connection, counters and policy, on one clock. */
import { type SharedCounters, startSharedCounters } from "../../src/cluster/redis/index.ts";
import type { OnStoreError, RedisSettings } from "../../src/cluster/redis/settings.ts";
import type { Clock } from "../../src/lib/clock.ts";
import { type Log, silentLog } from "../../src/lib/log.ts";
import { ManualScheduler, timerScheduler } from "../../src/lib/scheduler.ts";
import { MemoryQuotaStore, QuotaCounters } from "../../src/policies/limits/index.ts";

export interface TestNode {
  readonly shared: SharedCounters;
  readonly quotas: QuotaCounters;
  /** Runs lease renewals, on the test's clock. */
  readonly scheduler: ManualScheduler;
}

let prefixes = 0;
/** A key prefix no other test uses, so tests sharing one Redis never see each other's counts. */
export const freshPrefix = () => `t${process.pid}-${++prefixes}:`;

export async function startNode(
  url: string,
  clock: Clock,
  opts: {
    prefix: string;
    onStoreError?: OnStoreError;
    timeoutMs?: number;
    leaseMs?: number;
    log?: Log;
  },
): Promise<TestNode> {
  const settings: RedisSettings = {
    url,
    onStoreError: opts.onStoreError ?? "local",
    // Generous: a loaded machine must not fail over by accident.
    timeoutMs: opts.timeoutMs ?? 2000,
    keyPrefix: opts.prefix,
    nodes: 1,
    leaseMs: opts.leaseMs ?? 30_000,
  };
  const quotas = new QuotaCounters(new MemoryQuotaStore(), clock);
  const scheduler = new ManualScheduler(() => clock.now());
  const shared = startSharedCounters({
    settings,
    clock,
    scheduler,
    realScheduler: timerScheduler,
    quotas,
    log: opts.log ?? silentLog,
    keepMs: 86_400_000,
  });
  await shared.ready;
  return { shared, quotas, scheduler };
}
