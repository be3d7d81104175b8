/**
 * Deferred work, injected wherever gatehouse runs something later (flushes, sweeps, retries, upstream
 * deadlines), so that tests and test mode move time by hand instead of sleeping. The real scheduler
 * never keeps the process alive: shutdown flushes what is left explicitly.
 */
export type Cancel = () => void;

/** A task may return a promise; a virtual scheduler waits for it before running the next one. */
export type Task = () => unknown;

export interface Scheduler {
  /** Runs `fn` once, `ms` from now. */
  after(ms: number, fn: Task): Cancel;
  /**
   * Runs `fn` every `ms` until cancelled. For maintenance that only needs to have run by a given
   * time (flushes, sweeps): a virtual scheduler skipping over many periods at once may run it once,
   * at the last of them.
   */
  every(ms: number, fn: Task): Cancel;
}

export const timerScheduler: Scheduler = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

/** A scheduler that only runs what is due when told to; for unit tests. */
export class ManualScheduler implements Scheduler {
  private tasks: { due: number; fn: Task; id: number; period: number }[] = [];
  private nextId = 0;
  constructor(private readonly now: () => number) {}

  after(ms: number, fn: Task): Cancel {
    return this.add(ms, fn, 0);
  }

  every(ms: number, fn: Task): Cancel {
    return this.add(ms, fn, Math.max(1, ms));
  }

  private add(ms: number, fn: Task, period: number): Cancel {
    const task = { due: this.now() + ms, fn, id: this.nextId++, period };
    this.tasks.push(task);
    return () => {
      this.tasks = this.tasks.filter((t) => t !== task);
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
      if (due.period > 0) due.due += due.period * Math.max(1, Math.ceil((now - due.due + 1) / due.period));
      else this.tasks = this.tasks.filter((t) => t !== due);
      due.fn();
      ran++;
    }
  }
}
