/**
 * Usage metering, assembled: the writer behind the data plane's observe hook, the retention sweeper
 * and the service the control API reads. The composition root creates one and closes it on shutdown.
 */
import type { Database } from "bun:sqlite";
import type { UsageDecl } from "../config/schema.ts";
import { StoreHealth, type StoreStatus } from "../db/store-health.ts";
import type { WriterThread } from "../db/writer-thread.ts";
import type { Clock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";
import { usageSettings } from "./config.ts";
import { UsageRetention } from "./retention.ts";
import { rowObserver, type UsageRow } from "./row.ts";
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
  readonly service: UsageService;
  /** Pass as GatewayDeps.observe. */
  readonly observe: (ctx: RequestContext, outcome: RequestOutcome) => void;
  /** Writes a row a data-plane thread built (server.threads > 1; it logged its access line itself). */
  readonly record: (row: UsageRow) => void;
  /**
   * Stops retention and writes every buffered row; resolves once they are committed. Call it after
   * the listeners have drained and before closing the database.
   */
  close(): Promise<{ written: number; lost: number }>;
  /** Whether usage rows reach the database, and how many wait in memory. */
  status(): StoreStatus;
}

/**
 * Given the writer thread (a database file), rows are written and pruned there, so SQLite never
 * stalls the data plane, and close() closes that thread. An in-memory database cannot be shared
 * across threads, so without one the writer and retention run on this thread.
 */
export function createUsageMetering(deps: {
  /** Read when used: an OpenDb replaces its connection if the file had to be recreated. */
  database: { readonly sqlite: Database };
  thread?: WriterThread;
  clock: Clock;
  log: Log;
  config?: UsageDecl | undefined;
  scheduler?: Scheduler;
  /**
   * Writes every buffered row before each report or export, so the answer includes every request
   * answered so far. Test mode sets it: there, the flush timers only fire when the clock is moved.
   * Only for rows written on this thread.
   */
  flushBeforeReads?: boolean;
  /** Hears every row as it is recorded (the access log). */
  onRow?: (row: UsageRow) => void;
  /** Cluster mode: the last row PostgreSQL has; retention keeps the later ones (see UsageRetention). */
  shippedThrough?: () => number;
}): UsageMetering {
  const settings = usageSettings(deps.config);
  const { database } = deps;
  let service = createUsageService({
    get sqlite() {
      return database.sqlite;
    },
    clock: deps.clock,
  });
  const observeInto = (record: (row: UsageRow) => void) => rowObserver(record, deps.onRow, deps.log);
  const { thread } = deps;
  if (thread) {
    return {
      service,
      observe: observeInto(thread.recordRow),
      record: thread.recordRow,
      close: () => thread.close(),
      status: () => thread.status(),
    };
  }
  const health = new StoreHealth({
    clock: deps.clock,
    log: deps.log,
    counts: () => {
      const { buffered, dropped, failedFlushes } = writer.stats();
      return { buffered, dropped, retries: failedFlushes, waiting: 0 };
    },
  });
  const writer: UsageWriter = new UsageWriter({
    health,
    write: createBatchWriter(database.sqlite),
    clock: deps.clock,
    log: deps.log,
    flushRows: settings.flushRows,
    flushIntervalMs: settings.flushIntervalMs,
    bufferRows: settings.bufferRows,
    ...(deps.scheduler ? { scheduler: deps.scheduler } : {}),
  });
  const retention = new UsageRetention({
    sqlite: database.sqlite,
    clock: deps.clock,
    log: deps.log,
    retentionMs: settings.retentionMs,
    ...(deps.scheduler ? { scheduler: deps.scheduler } : {}),
    ...(deps.shippedThrough ? { shippedThrough: deps.shippedThrough } : {}),
  });
  retention.start();
  if (deps.flushBeforeReads) {
    const reads = service;
    service = {
      ...reads,
      queryUsage(q) {
        writer.flush();
        return reads.queryUsage(q);
      },
      exportUsage(q) {
        writer.flush();
        return reads.exportUsage(q);
      },
      refusals(q) {
        writer.flush();
        return reads.refusals(q);
      },
    };
  }
  return {
    service,
    observe: observeInto((row) => writer.record(row)),
    record: (row) => writer.record(row),
    async close() {
      await retention.stop();
      return writer.close();
    },
    status: () => health.status(),
  };
}
