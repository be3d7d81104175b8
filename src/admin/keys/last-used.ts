/**
 * Records when keys were last used without a write per request: the auth policy's onUse hook feeds
 * `record`, which keeps the latest time per key in memory; `flush` hands them all to one write, on a
 * timer and at shutdown. A crash loses at most one interval of last-used times; a failed write keeps
 * its times for the next flush.
 */
import type { Database } from "bun:sqlite";
import { RetriedWrites } from "../../db/retried-writes.ts";
import { type Cancel, type Scheduler, timerScheduler } from "../../lib/scheduler.ts";

/** Writes a batch of key id → last-used time (epoch ms); throws when the database refuses. */
export type WriteLastUsed = (batch: ReadonlyMap<string, number>) => void;

/** The write itself, on `sqlite`, in one transaction. */
export function sqliteLastUsedWriter(sqlite: Database): WriteLastUsed {
  // Never moves the time backwards, e.g. when an older batch lands after a newer one.
  const update = sqlite.query(
    "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
  );
  return sqlite.transaction((batch: ReadonlyMap<string, number>) => {
    for (const [id, at] of batch) update.run(at, id);
  });
}

export class LastUsedTracker {
  private readonly writes: RetriedWrites<number>;
  private stopTimer: Cancel | undefined;

  constructor(
    write: WriteLastUsed,
    onError: (err: unknown) => void = (err) => console.error("last-used write failed:", err),
    private readonly intervalMs = 5_000,
    private readonly scheduler: Scheduler = timerScheduler,
  ) {
    // A refused batch waits for the next interval, merged with what was recorded meanwhile.
    this.writes = new RetriedWrites(
      write,
      (held, next) => Math.max(held, next),
      onError,
      intervalMs,
      scheduler,
    );
  }

  /** The auth policy's onUse hook: cheap, in memory. */
  readonly record = (keyId: string, at: number): void => this.writes.hold(keyId, at);

  /** Writes what was recorded since the last flush; returns how many keys it wrote. */
  flush(): number {
    const waiting = this.writes.waiting;
    return this.writes.flush() ? waiting : 0;
  }

  start(): void {
    this.stopTimer ??= this.scheduler.every(this.intervalMs, () => this.flush());
  }

  /** Stops the timer and writes what is left; call before closing the database. */
  stop(): void {
    this.stopTimer?.();
    this.stopTimer = undefined;
    this.flush();
    // No retry may touch the database once it is closed.
    this.writes.stop();
  }
}
