/**
 * Buffers usage rows in memory and writes them in batches, so a request only ever pays for an array
 * push. A batch is written when `flushRows` rows are waiting or the oldest has waited
 * `flushInterval`, whichever comes first. Metering never fails a request: a failed write is reported
 * to the store's health (which logs it), its rows stay buffered and are retried with backoff; past
 * `bufferRows` the oldest rows are dropped and counted in `stats().dropped`.
 */

import { StoreHealth, type WriteHealth } from "../db/store-health.ts";
import type { Clock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import { type Cancel, type Scheduler, timerScheduler } from "../lib/scheduler.ts";
import type { UsageRow } from "./row.ts";
import type { WriteBatch } from "./store.ts";

export interface UsageWriterOptions {
  /** Writes one batch atomically (see createBatchWriter); throws when the database refuses. */
  write: WriteBatch;
  clock: Clock;
  log: Log;
  flushRows: number;
  flushIntervalMs: number;
  /** Most rows kept in memory while writes fail. */
  bufferRows: number;
  scheduler?: Scheduler;
  /** Hears of failed and recovered writes; by default a StoreHealth of its own that logs them. */
  health?: WriteHealth;
}

export interface UsageWriterStats {
  /** Rows waiting in memory. */
  buffered: number;
  /** Rows committed to the database. */
  written: number;
  /** Rows lost: dropped because the buffer was full while writes failed, or unwritable at close(). */
  dropped: number;
  flushes: number;
  failedFlushes: number;
}

const MAX_BACKOFF_MS = 30_000;
const SOURCE = "usage rows";

export class UsageWriter {
  private rows: UsageRow[] = [];
  /** Index of the oldest buffered row in `rows`: dropping and flushing advance it instead of shifting. */
  private head = 0;
  private timer: Cancel | null = null;
  private timerDue = 0;
  private failures = 0;
  private retryAt = 0;
  private closed = false;
  private warnedLate = false;
  private readonly scheduler: Scheduler;
  private readonly health: WriteHealth;
  private readonly counts = { written: 0, dropped: 0, flushes: 0, failedFlushes: 0 };

  constructor(private readonly o: UsageWriterOptions) {
    this.scheduler = o.scheduler ?? timerScheduler;
    this.health =
      o.health ??
      new StoreHealth({
        clock: o.clock,
        log: o.log,
        counts: () => ({
          buffered: this.size,
          dropped: this.counts.dropped,
          retries: this.counts.failedFlushes,
          waiting: 0,
        }),
      });
  }

  /** Buffers one row; never touches the database. */
  record(row: UsageRow): void {
    if (this.closed) {
      // A request that ended after shutdown began: there is no database left to write it to.
      this.counts.dropped++;
      if (!this.warnedLate) this.o.log("warn", "usage rows recorded after close are dropped");
      this.warnedLate = true;
      return;
    }
    this.rows.push(row);
    const over = this.size - this.o.bufferRows;
    if (over > 0) {
      this.head += over;
      this.counts.dropped += over;
      this.compact();
    }
    const now = this.o.clock.now();
    if (now < this.retryAt) this.schedule(this.retryAt - now);
    else if (this.size >= this.o.flushRows) this.schedule(0);
    else this.schedule(this.o.flushIntervalMs);
  }

  get size(): number {
    return this.rows.length - this.head;
  }

  /**
   * Writes every buffered row now, in transactions of at most flushRows rows; stops at the first
   * failure, keeping the rest for a retry. Returns the rows written. Never throws.
   */
  flush(): number {
    const before = this.counts.written;
    let progress = 1;
    while (this.size > 0 && progress > 0) progress = this.flushBatch();
    return this.counts.written - before;
  }

  /** Stops the timer and writes everything left; rows that cannot be written are counted as dropped. */
  close(): { written: number; lost: number } {
    this.timer?.();
    this.timer = null;
    this.closed = true;
    const written = this.flush();
    const lost = this.size;
    if (lost > 0) {
      this.counts.dropped += lost;
      this.rows = [];
      this.head = 0;
      this.o.log("error", "usage rows lost at shutdown: the database refused them", { rows: lost });
    }
    return { written, lost };
  }

  stats(): UsageWriterStats {
    return { buffered: this.size, ...this.counts };
  }

  /** Arms the flush timer to fire within `ms`, keeping an earlier one. */
  private schedule(ms: number): void {
    const due = this.o.clock.now() + ms;
    if (this.timer && this.timerDue <= due) return;
    this.timer?.();
    this.timerDue = due;
    this.timer = this.scheduler.after(ms, () => this.onTimer());
  }

  private onTimer(): void {
    this.timer = null;
    // One batch per tick: a backlog is written in short transactions with the event loop free between.
    this.flushBatch();
    if (this.size === 0 || this.closed) return;
    const now = this.o.clock.now();
    if (now < this.retryAt) this.schedule(this.retryAt - now);
    else if (this.size >= this.o.flushRows) this.schedule(0);
    else this.schedule(this.o.flushIntervalMs);
  }

  /** Writes the oldest batch; returns how many rows left the buffer (0 on failure or when empty). */
  private flushBatch(): number {
    const n = Math.min(this.size, this.o.flushRows);
    if (n === 0) return 0;
    const batch = this.rows.slice(this.head, this.head + n);
    try {
      this.o.write(batch);
    } catch (err) {
      if (isRowError(err)) return this.flushSingly(batch);
      this.failed(err);
      return 0;
    }
    this.consumed(n, 0);
    return n;
  }

  /** One bad row must not block every row behind it: write the batch row by row, dropping refused ones. */
  private flushSingly(batch: UsageRow[]): number {
    let written = 0;
    let bad = 0;
    for (const r of batch) {
      try {
        this.o.write([r]);
        written++;
      } catch (err) {
        if (isRowError(err)) {
          bad++;
          continue;
        }
        this.consumed(written, bad);
        this.failed(err);
        return written + bad;
      }
    }
    this.consumed(written, bad);
    this.o.log("error", "usage rows the database refused were dropped", { rows: bad });
    return written + bad;
  }

  private consumed(written: number, bad: number): void {
    this.head += written + bad;
    this.compact();
    this.counts.written += written;
    this.counts.dropped += bad;
    this.counts.flushes++;
    if (written > 0) {
      this.failures = 0;
      this.retryAt = 0;
      this.health.succeeded(SOURCE);
    }
  }

  private failed(err: unknown): void {
    this.failures++;
    this.counts.failedFlushes++;
    const now = this.o.clock.now();
    const base = Math.max(this.o.flushIntervalMs, 100);
    this.retryAt = now + Math.min(MAX_BACKOFF_MS, base * 2 ** Math.min(this.failures - 1, 20));
    this.health.failed(SOURCE, err);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.head);
      this.head = 0;
    }
  }
}

/** Errors caused by a row's content rather than the database's state: retrying the same row cannot help. */
function isRowError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG)/.test(code);
}
