/**
 * Whether the writes traffic causes (usage rows, quota counters, key last-used times) are reaching
 * the database. Each writer reports its successes and failures here; the store is healthy when none
 * is failing. A fault is logged when it starts, then at most once a minute while it lasts, and once
 * when it ends; every change of state is handed to `onChange` (the writer thread posts it to the
 * main thread, which answers /readyz and /metrics and refuses control-API writes meanwhile).
 */
import type { Clock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";

/** What went wrong, as a bounded set (a metrics label). */
export const STORE_FAULTS = ["locked", "full", "readonly", "io", "gone", "other"] as const;
export type StoreFault = (typeof STORE_FAULTS)[number];

export interface StoreStatus {
  healthy: boolean;
  /** The most recent fault while unhealthy. */
  fault: StoreFault | null;
  /** Its error message (SQLite's code and text). */
  error: string | null;
  /** Epoch ms when the fault began. */
  since: number | null;
  /** Usage rows waiting in memory for the database. */
  buffered: number;
  /** Usage rows lost since start: the buffer was full while writes failed. */
  dropped: number;
  /** Batches of usage rows the database refused since start; each stays buffered and is retried. */
  retries: number;
  /** Quota counters and key last-used times waiting for the database. */
  waiting: number;
}

export const healthyStatus: StoreStatus = {
  healthy: true,
  fault: null,
  error: null,
  since: null,
  buffered: 0,
  dropped: 0,
  retries: 0,
  waiting: 0,
};

/** The writes a writer reports on: what failed, or that it succeeded again. */
export interface WriteHealth {
  failed(source: string, err: unknown): void;
  succeeded(source: string): void;
}

/** Thrown instead of writing while the database file is gone or replaced (see writer-worker.ts). */
export class StoreGoneError extends Error {
  override readonly name = "StoreGoneError";
}

export function classifyStoreError(err: unknown): StoreFault {
  if (err instanceof StoreGoneError) return "gone";
  const code = String((err as { code?: unknown })?.code ?? "");
  if (/^SQLITE_(BUSY|LOCKED)/.test(code)) return "locked";
  if (code === "SQLITE_FULL") return "full";
  if (/^SQLITE_READONLY/.test(code)) return "readonly";
  if (/^SQLITE_(IOERR|CANTOPEN)/.test(code)) return "io";
  return "other";
}

const FAULT_TEXT: Record<StoreFault, string> = {
  locked: "the database is locked by another connection",
  full: "the disk is full",
  readonly: "the database is read-only",
  io: "the disk refuses writes (a read-only or failing filesystem)",
  gone: "the database file was removed or replaced",
  other: "the database refuses writes",
};

/** One sentence for /readyz and control-API refusals, e.g. "usage rows cannot be written: …". */
export function describeStoreStatus(s: StoreStatus): string {
  if (s.healthy) return "The database accepts writes.";
  const fault = s.fault ?? "other";
  return (
    `Usage rows cannot be written: ${FAULT_TEXT[fault]} (${s.error ?? "unknown error"}); ` +
    `${s.buffered} rows buffered, ${s.dropped} dropped, ${s.waiting} quota counters and last-used times waiting. ` +
    "Traffic is served meanwhile; the buffer is written once the database accepts writes again."
  );
}

const LOG_EVERY_MS = 60_000;

export class StoreHealth implements WriteHealth {
  private readonly failing = new Map<string, { fault: StoreFault; error: string }>();
  private since: number | null = null;
  private lastLogAt = Number.NEGATIVE_INFINITY;
  private failuresSinceLog = 0;

  constructor(
    private readonly o: {
      clock: Clock;
      log: Log;
      /** What waits in memory, for the log lines and the status. */
      counts: () => Pick<StoreStatus, "buffered" | "dropped" | "retries" | "waiting">;
      onChange?: (status: StoreStatus) => void;
      logEveryMs?: number;
    },
  ) {}

  failed(source: string, err: unknown): void {
    const now = this.o.clock.now();
    const fault = classifyStoreError(err);
    const error = describeError(err);
    const wasHealthy = this.failing.size === 0;
    const changed = wasHealthy || this.current()?.fault !== fault;
    // The most recent failure is last in the map, and is the one reported.
    this.failing.delete(source);
    this.failing.set(source, { fault, error });
    this.failuresSinceLog++;
    if (wasHealthy) this.since = now;
    if (wasHealthy || now - this.lastLogAt >= (this.o.logEveryMs ?? LOG_EVERY_MS)) {
      this.o.log("error", "database writes failing; traffic is served and writes wait in memory", {
        fault,
        error,
        source,
        failedWrites: this.failuresSinceLog,
        downMs: now - (this.since ?? now),
        ...this.o.counts(),
      });
      this.lastLogAt = now;
      this.failuresSinceLog = 0;
    }
    if (changed) this.o.onChange?.(this.status());
  }

  succeeded(source: string): void {
    if (!this.failing.delete(source)) return;
    if (this.failing.size === 0) {
      const now = this.o.clock.now();
      this.o.log("warn", "database writes recovered", {
        downMs: now - (this.since ?? now),
        ...this.o.counts(),
      });
      this.since = null;
      this.lastLogAt = Number.NEGATIVE_INFINITY;
      this.failuresSinceLog = 0;
    }
    this.o.onChange?.(this.status());
  }

  get healthy(): boolean {
    return this.failing.size === 0;
  }

  status(): StoreStatus {
    const last = this.current();
    return {
      healthy: last === null,
      fault: last?.fault ?? null,
      error: last?.error ?? null,
      since: last === null ? null : this.since,
      ...this.o.counts(),
    };
  }

  private current(): { fault: StoreFault; error: string } | null {
    let last: { fault: StoreFault; error: string } | null = null;
    for (const f of this.failing.values()) last = f;
    return last;
  }
}

function describeError(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = String((err as Error)?.message ?? err);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}
