/**
 * Removes usage rows older than the retention, and rollups whose whole period is older, in batches of
 * a few thousand rows, giving the event loop back between batches so requests and flushes never wait
 * behind a long DELETE. Deleted pages are reused by later inserts; the file does not shrink.
 */
import type { Database } from "bun:sqlite";
import type { RollupDim } from "../db/schema.ts";
import type { Clock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import { type Cancel, type Scheduler, timerScheduler } from "../lib/scheduler.ts";
import { DIMS, GRAINS } from "./rollup.ts";

/** How one batch is deleted; returns how many rows went. */
export interface RetentionDeletes {
  rows(cutoff: number, limit: number): number | Promise<number>;
  /** Rollups of one grain and dimension whose period starts at or before `startAtMost`. */
  rollups(grain: number, dim: RollupDim, startAtMost: number, limit: number): number | Promise<number>;
}

export type RetentionOptions = RetentionCommon &
  (
    | {
        sqlite: Database;
        /**
         * Cluster mode: the id of the last row PostgreSQL has. Later rows stay until shipped, and so
         * does that one: SQLite gives a new row the highest id plus one, so while it stays no id is
         * ever given out twice.
         */
        shippedThrough?: () => number;
      }
    /** Another store's (cluster mode: PostgreSQL's). */
    | { deletes: RetentionDeletes }
  );

interface RetentionCommon {
  clock: Clock;
  log: Log;
  /** Rows older than this are removed; 0 keeps everything. */
  retentionMs: number;
  /** Rows deleted per statement (default 1000: ~15 ms of work, the longest the event loop waits). */
  batchRows?: number;
  /** Time between sweeps. */
  everyMs?: number;
  scheduler?: Scheduler;
  /** Hands the event loop back between batches. */
  yieldNow?: () => Promise<void>;
}

export interface SweepResult {
  usage: number;
  rollups: number;
}

const DEFAULT_EVERY_MS = 10 * 60_000;
const FIRST_SWEEP_MS = 60_000;

export class UsageRetention {
  private readonly deletes: RetentionDeletes;
  private readonly batchRows: number;
  private readonly scheduler: Scheduler;
  private readonly yieldNow: () => Promise<void>;
  private timer: Cancel | null = null;
  private running: Promise<SweepResult> | null = null;
  private stopped = false;

  constructor(private readonly o: RetentionOptions) {
    this.batchRows = o.batchRows ?? 1000;
    this.scheduler = o.scheduler ?? timerScheduler;
    this.yieldNow = o.yieldNow ?? (() => new Promise((resolve) => setImmediate(resolve)));
    this.deletes = "deletes" in o ? o.deletes : sqliteDeletes(o.sqlite, o.shippedThrough);
  }

  /** Schedules sweeps: the first a minute after start, then every `everyMs`. */
  start(): void {
    if (this.o.retentionMs <= 0 || this.timer || this.stopped) return;
    this.arm(FIRST_SWEEP_MS);
  }

  /** Stops scheduling; a sweep in progress stops after its current batch. */
  stop(): Promise<void> {
    this.stopped = true;
    this.timer?.();
    this.timer = null;
    return this.running ? this.running.then(() => {}) : Promise.resolve();
  }

  /** Deletes everything past retention, batch by batch. Concurrent calls share one sweep. */
  sweep(): Promise<SweepResult> {
    this.running ??= this.sweepAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async sweepAll(): Promise<SweepResult> {
    const result = { usage: 0, rollups: 0 };
    if (this.o.retentionMs <= 0) return result;
    const cutoff = this.o.clock.now() - this.o.retentionMs;
    result.usage = await this.drain(() => this.deletes.rows(cutoff, this.batchRows));
    for (const grain of GRAINS) {
      for (const dim of DIMS) {
        // A rollup goes only when its whole period is past the cutoff.
        result.rollups += await this.drain(() =>
          this.deletes.rollups(grain, dim, cutoff - grain, this.batchRows),
        );
      }
    }
    if (result.usage + result.rollups > 0) {
      this.o.log("info", "usage retention sweep", { cutoff: new Date(cutoff).toISOString(), ...result });
    }
    return result;
  }

  private async drain(batch: () => number | Promise<number>): Promise<number> {
    let total = 0;
    while (!this.stopped) {
      const n = await batch();
      total += n;
      if (n < this.batchRows) break;
      await this.yieldNow();
    }
    return total;
  }

  private arm(ms: number): void {
    // The sweep's promise is returned so that a virtual clock finishes it before moving on.
    this.timer = this.scheduler.after(ms, () => {
      this.timer = null;
      return this.sweep()
        .catch((err) => this.o.log("error", "usage retention sweep failed", { error: String(err) }))
        .finally(() => {
          if (!this.stopped) this.arm(this.o.everyMs ?? DEFAULT_EVERY_MS);
        });
    });
  }
}

function sqliteDeletes(sqlite: Database, shippedThrough?: () => number): RetentionDeletes {
  const rollups = sqlite.query<unknown, [number, string, number, number]>(
    "DELETE FROM usage_rollup WHERE rowid IN (SELECT rowid FROM usage_rollup " +
      "WHERE grain = ? AND dim = ? AND start <= ? LIMIT ?)",
  );
  return {
    rows: shippedThrough ? shippedRows(sqlite, shippedThrough) : allRows(sqlite),
    rollups: (grain, dim, startAtMost, limit) => rollups.run(grain, dim, startAtMost, limit).changes,
  };
}

function allRows(sqlite: Database): RetentionDeletes["rows"] {
  const del = sqlite.query<unknown, [number, number]>(
    "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE ts < ? LIMIT ?)",
  );
  return (cutoff, limit) => del.run(cutoff, limit).changes;
}

function shippedRows(sqlite: Database, shippedThrough: () => number): RetentionDeletes["rows"] {
  const del = sqlite.query<unknown, [number, number, number]>(
    "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE ts < ? AND id < ? LIMIT ?)",
  );
  return (cutoff, limit) => del.run(cutoff, shippedThrough(), limit).changes;
}
