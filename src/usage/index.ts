/**
 * Usage metering, assembled: the writer behind the data plane's observe hook, the retention sweeper
 * and the service the control API reads. The composition root creates one and closes it on shutdown.
 */
import type { Database } from "bun:sqlite";
import type { UsageDecl } from "../config/schema.ts";
import type { Clock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import { usageSettings } from "./config.ts";
import { UsageRetention } from "./retention.ts";
import type { Scheduler } from "./scheduler.ts";
import { createUsageService, type UsageService } from "./service.ts";
import { createBatchWriter } from "./store.ts";
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
  readonly writer: UsageWriter;
  readonly retention: UsageRetention;
  readonly service: UsageService;
  /** Pass as GatewayDeps.observe. */
  readonly observe: UsageWriter["observe"];
  /**
   * Stops retention (a sweep in progress stops before its next batch) and writes every buffered row.
   * Synchronous: call it after the listeners have drained and right before closing the database.
   */
  close(): { written: number; lost: number };
}

export function createUsageMetering(deps: {
  sqlite: Database;
  clock: Clock;
  log: Log;
  config?: UsageDecl | undefined;
  scheduler?: Scheduler;
}): UsageMetering {
  const settings = usageSettings(deps.config);
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
    writer,
    retention,
    service: createUsageService({ sqlite: deps.sqlite, clock: deps.clock }),
    observe: writer.observe,
    close() {
      void retention.stop();
      return writer.close();
    },
  };
}
