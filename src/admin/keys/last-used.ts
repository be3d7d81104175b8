/**
 * Records when keys were last used without a write per request: the auth policy's onUse hook feeds
 * `record`, which keeps the latest time per key in memory; `flush` writes them all in one
 * transaction, on a timer and at shutdown. A crash loses at most one interval of last-used times.
 */
import type { Statement } from "bun:sqlite";
import type { OpenDb } from "../../db/open.ts";

export class LastUsedTracker {
  private pending = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly update: Statement;

  constructor(
    private readonly database: OpenDb,
    private readonly intervalMs = 5_000,
  ) {
    // Never moves the time backwards, e.g. when an older batch lands after a newer one.
    this.update = database.sqlite.prepare(
      "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
    );
  }

  /** The auth policy's onUse hook: cheap, in memory. */
  readonly record = (keyId: string, at: number): void => {
    const seen = this.pending.get(keyId);
    if (seen === undefined || at > seen) this.pending.set(keyId, at);
  };

  /** Writes what was recorded since the last flush; returns how many keys it updated. */
  flush(): number {
    if (this.pending.size === 0) return 0;
    const batch = this.pending;
    this.pending = new Map();
    this.database.sqlite.transaction(() => {
      for (const [id, at] of batch) this.update.run(at, id);
    })();
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
