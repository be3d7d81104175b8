/**
 * Writes that only ever carry the latest value per key (a quota counter's absolute count, a key's
 * last-used time), so a failed write can simply be merged into the next one: nothing is lost and
 * nothing is counted twice. A failed batch is retried after `retryMs`, on the next `add`, and at the
 * final `flush`.
 */
import { type Cancel, type Scheduler, timerScheduler } from "../lib/scheduler.ts";

export class RetriedWrites<V> {
  private pending = new Map<string, V>();
  private cancelRetry: Cancel | undefined;

  constructor(
    /** Writes one batch atomically; throws when the database refuses. */
    private readonly write: (batch: ReadonlyMap<string, V>) => void,
    /** Which of two values for one key to keep. */
    private readonly newer: (held: V, next: V) => V,
    private readonly onError: (err: unknown, waiting: number) => void,
    private readonly retryMs = 1_000,
    private readonly scheduler: Scheduler = timerScheduler,
  ) {}

  /** Merges `entries` into what waits and writes it all. */
  add(entries: Iterable<readonly [string, V]>): void {
    for (const [key, value] of entries) this.hold(key, value);
    this.flush();
  }

  /** Merges one value into what waits, without writing: cheap enough for a request path. */
  hold(key: string, value: V): void {
    const held = this.pending.get(key);
    this.pending.set(key, held === undefined ? value : this.newer(held, value));
  }

  /** Writes what waits; true when nothing is left waiting. */
  flush(): boolean {
    this.cancelRetry?.();
    this.cancelRetry = undefined;
    if (this.pending.size === 0) return true;
    const batch = this.pending;
    this.pending = new Map();
    try {
      this.write(batch);
      return true;
    } catch (err) {
      for (const [key, value] of batch) this.hold(key, value);
      this.onError(err, this.pending.size);
      this.cancelRetry = this.scheduler.after(this.retryMs, () => this.flush());
      return false;
    }
  }

  /** Keys waiting to be written. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Stops retrying; what is still waiting is dropped and its count returned. */
  stop(): number {
    this.cancelRetry?.();
    this.cancelRetry = undefined;
    const dropped = this.pending.size;
    this.pending = new Map();
    return dropped;
  }
}
