/**
 * Deferred work, injected so tests run timers by hand instead of sleeping. The real one never keeps
 * the process alive: metering must not delay an exit, and close() flushes what is left.
 */
export type Cancel = () => void;

export interface Scheduler {
  after(ms: number, fn: () => void): Cancel;
}

export const timerScheduler: Scheduler = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** A scheduler that only runs what is due when told to; for tests. */
export class ManualScheduler implements Scheduler {
  private tasks: { due: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  constructor(private readonly now: () => number) {}

  after(ms: number, fn: () => void): Cancel {
    const id = this.nextId++;
    this.tasks.push({ due: this.now() + ms, fn, id });
    return () => {
      this.tasks = this.tasks.filter((t) => t.id !== id);
    };
  }

  /** How many tasks are waiting. */
  get pending(): number {
    return this.tasks.length;
  }

  /** Runs every task due at the current time (including ones they schedule for now), in due order. */
  runDue(): number {
    let ran = 0;
    for (;;) {
      const now = this.now();
      const due = this.tasks.filter((t) => t.due <= now).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!due) return ran;
      this.tasks = this.tasks.filter((t) => t !== due);
      due.fn();
      ran++;
    }
  }
}
