/**
 * How every data-plane thread switches to a new snapshot at once.
 *
 * "Together" means: there is one instant, the main thread's store of version V into shared memory,
 * before which every request on every thread starts with an older snapshot and after which every
 * request on every thread starts with V (or a newer one). A request reads the version once, when it
 * starts, and keeps that snapshot to its end, so none sees a mix. The store happens only once every
 * live thread has built V (Publication), so no thread ever waits or serves V late; and the control
 * API answers a change only after it, so a client holding the answer is served the change by every
 * thread.
 */
import type { Snapshot } from "../gateway/snapshot.ts";

/** The main thread's side: which version every live thread has built, and who waits for which. */
export class Publication {
  /** Per thread: the newest version it has built, or null once it is gone. */
  private readonly built: (number | null)[];
  private waiting: { version: number; resolve: () => void }[] = [];
  private current = 0;

  constructor(
    threads: number,
    /** The one store that switches every thread (Atomics.store into shared memory). */
    private readonly store: (version: number) => void,
  ) {
    this.built = Array.from({ length: threads }, () => 0);
  }

  /** The version every thread serves; 0 before the first. */
  get published(): number {
    return this.current;
  }

  /** Thread `i` has built `version`. */
  prepared(i: number, version: number): void {
    const b = this.built[i];
    if (b === null || b === undefined) return;
    this.built[i] = Math.max(b, version);
    this.advance();
  }

  /** Thread `i` is gone: nobody waits for it any more. */
  gone(i: number): void {
    this.built[i] = null;
    this.advance();
  }

  /** Resolves once `version` (or a newer one) is published. */
  served(version: number): Promise<void> {
    if (this.current >= version) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.waiting.push({ version, resolve });
    return promise;
  }

  /** Wakes every waiter (shutdown: nothing more will be published). */
  release(): void {
    for (const w of this.waiting.splice(0)) w.resolve();
  }

  private advance(): void {
    const live = this.built.filter((b): b is number => b !== null);
    if (live.length === 0) return;
    const ready = Math.min(...live);
    if (ready <= this.current) return;
    this.current = ready;
    this.store(ready);
    const still: typeof this.waiting = [];
    for (const w of this.waiting) {
      if (w.version <= ready) w.resolve();
      else still.push(w);
    }
    this.waiting = still;
  }
}

/** A data-plane thread's side: the snapshots it has built, and the one the published version names. */
export class PublishedSnapshots {
  private readonly built = new Map<number, Snapshot>();
  private current: Snapshot | undefined;

  constructor(
    /** Reads the published version (Atomics.load from shared memory). */
    private readonly published: () => number,
  ) {}

  /** A snapshot built ahead of its publication. */
  add(snapshot: Snapshot): void {
    this.built.set(snapshot.version, snapshot);
  }

  /** The snapshot a request starting now serves. */
  now(): Snapshot {
    const v = this.published();
    if (this.current === undefined || this.current.version !== v) {
      const next = this.built.get(v);
      if (next === undefined)
        throw new Error(`snapshot version ${v} was published before this thread built it`);
      this.current = next;
      for (const version of this.built.keys()) if (version < v) this.built.delete(version);
    }
    return this.current;
  }
}
