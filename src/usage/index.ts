/**
 * Usage metering, assembled: the writer behind the data plane's observe hook, the retention sweeper
 * and the service the control API reads. The composition root creates one and closes it on shutdown.
 */
import type { Database } from "bun:sqlite";
import type { UsageDecl } from "../config/schema.ts";
import type { Clock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";
import { usageSettings } from "./config.ts";
import { UsageRetention } from "./retention.ts";
import type { Scheduler } from "./scheduler.ts";
import { createUsageService, type UsageService } from "./service.ts";
import { createBatchWriter } from "./store.ts";
import { UsageThread } from "./thread.ts";
import { UsageWriter } from "./writer.ts";

export type { UsageSettings } from "./config.ts";
export type { ExportQuery, Granularity } from "./export.ts";
export type { GroupBy, UsageGroup, UsageQuery, UsageReport } from "./query.ts";
export { UsageQueryError } from "./query.ts";
export type { UsageRow } from "./row.ts";
export { usageRow } from "./row.ts";
export type { UsageService } from "./service.ts";
export type { UsageWriterStats } from "./writer.ts";
export { createBatchWriter, createUsageService, UsageRetention, UsageWriter, usageSettings };

export interface UsageMetering {
  readonly service: UsageService;
  /** Pass as GatewayDeps.observe. */
  readonly observe: (ctx: RequestContext, outcome: RequestOutcome) => void;
  /**
   * Stops retention and writes every buffered row; resolves once they are committed. Call it after
   * the listeners have drained and before closing the database.
   */
  close(): Promise<{ written: number; lost: number }>;
}

/**
 * With a database file, writes and retention run on a thread of their own (thread.ts), so SQLite
 * never stalls the data plane. An in-memory database cannot be shared across threads, so there they
 * run on this one.
 */
export function createUsageMetering(deps: {
  sqlite: Database;
  /** The database's path; ":memory:" keeps the writer on this thread. */
  path?: string;
  clock: Clock;
  log: Log;
  config?: UsageDecl | undefined;
  scheduler?: Scheduler;
}): UsageMetering {
  const settings = usageSettings(deps.config);
  const service = createUsageService({ sqlite: deps.sqlite, clock: deps.clock });
  if (deps.path && deps.path !== ":memory:") {
    const thread = new UsageThread(deps.path, settings, deps.log);
    return { service, observe: thread.observe, close: () => thread.close() };
  }
  const writer = new UsageWriter({
    write: createBatchWriter(deps.sqlite),
    clock: deps.clock,
    log: deps.log,
    flushRows: settings.flushRows,
    flushIntervalMs: settings.flushIntervalMs,
    bufferRows: settings.bufferRows,
    ...(deps.scheduler ? { scheduler: deps.scheduler } : {}),
  });
  const retention = new UsageRetention({
    sqlite: deps.sqlite,
    clock: deps.clock,
    log: deps.log,
    retentionMs: settings.retentionMs,
    ...(deps.scheduler ? { scheduler: deps.scheduler } : {}),
  });
  retention.start();
  return {
    service,
    observe: writer.observe,
    async close() {
      await retention.stop();
      return writer.close();
    },
  };
}
