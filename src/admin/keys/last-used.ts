/**
 * Records when keys were last used without a write per request: the auth policy's onUse hook feeds
 * `record`, which keeps the latest time per key in memory; `flush` hands them all to one write, on a
 * timer and at shutdown. A crash loses at most one interval of last-used times; a failed write keeps
 * its times for the next flush.
 */
import type { Database } from "bun:sqlite";

/** Writes a batch of key id → last-used time (epoch ms); throws when the database refuses. */
export type WriteLastUsed = (batch: ReadonlyMap<string, number>) => void;

/** The write itself, on `sqlite`, in one transaction. */
export function sqliteLastUsedWriter(sqlite: Database): WriteLastUsed {
  // Never moves the time backwards, e.g. when an older batch lands after a newer one.
  const update = sqlite.prepare(
    "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
  );
  return sqlite.transaction((batch: ReadonlyMap<string, number>) => {
    for (const [id, at] of batch) update.run(at, id);
  });
}

export class LastUsedTracker {
  private pending = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly write: WriteLastUsed,
    private readonly onError: (err: unknown) => void = (err) => console.error("last-used write failed:", err),
    private readonly intervalMs = 5_000,
  ) {}

  /** The auth policy's onUse hook: cheap, in memory. */
  readonly record = (keyId: string, at: number): void => {
    const seen = this.pending.get(keyId);
    if (seen === undefined || at > seen) this.pending.set(keyId, at);
  };

  /** Writes what was recorded since the last flush; returns how many keys it wrote. */
  flush(): number {
    if (this.pending.size === 0) return 0;
    const batch = this.pending;
    this.pending = new Map();
    try {
      this.write(batch);
    } catch (err) {
      for (const [id, at] of batch) this.record(id, at);
      this.onError(err);
      return 0;
    }
    return batch.size;
  }

  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.intervalMs);
    // Never the reason the process stays alive.
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Stops the timer and writes what is left; call before closing the database. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
