/**
 * Test mode's clock: frozen until told to move, and the scheduler of every timer gatehouse runs
 * (window sweeps, quota flushes, usage flushes, retention, last-used writes, upstream deadlines).
 *
 * Moving it runs everything that falls due, in time order, each at its own due time, before the move
 * returns; a task's promise is awaited before the next one runs. Periodic maintenance only needs to
 * have run by a given time, so between two one-shot tasks each periodic task runs once, at the last
 * of its due times: a 31-day jump runs a 1-second flush a handful of times, not 2.7 million.
 */
import type { WaitTracker } from "../gateway/mock-upstream.ts";
import type { Clock } from "../lib/clock.ts";
import type { Cancel, Scheduler, Task } from "../lib/scheduler.ts";

interface Entry {
  due: number;
  /** 0 for a one-shot task. */
  period: number;
  fn: Task;
  seq: number;
  /** Set for timers of requests in flight (upstream deadlines, mock delays). */
  request: boolean;
}

export class ClockMovedBackwards extends Error {}

export class VirtualTime implements Clock, Scheduler, WaitTracker {
  private t: number;
  private entries: Entry[] = [];
  private seq = 0;
  /** Moves are serialized: a second one waits for the first to finish its tasks. */
  private moving: Promise<void> = Promise.resolve();

  constructor(
    start: number,
    /** A task that throws is reported here and the move goes on, as a real timer's would. */
    private readonly onError: (err: unknown) => void = (err) => console.error("timer task failed:", err),
  ) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: Task): Cancel {
    return this.add(this.t + Math.max(0, ms), 0, fn, false);
  }

  every(ms: number, fn: Task): Cancel {
    const period = Math.max(1, ms);
    return this.add(this.t + period, period, fn, false);
  }

  /**
   * The scheduler for timers of requests in flight (upstream deadlines, mock delays), so that
   * whoever drives the clock can tell a request waiting on the clock from background maintenance.
   */
  readonly requests: Scheduler = {
    after: (ms, fn) => this.add(this.t + Math.max(0, ms), 0, fn, true),
    every: (ms, fn) => this.add(this.t + Math.max(1, ms), Math.max(1, ms), fn, true),
  };

  private waiting = 0;

  /** Built-in upstreams waiting on this clock (see WaitTracker). */
  get waitingUpstreams(): number {
    return this.waiting;
  }

  begin(): () => void {
    this.waiting++;
    let ended = false;
    return () => {
      if (!ended) {
        ended = true;
        this.waiting--;
      }
    };
  }

  /** Timers of requests in flight. */
  get requestTimers(): number {
    return this.entries.filter((e) => e.request).length;
  }

  /** When the earliest timer of a request in flight falls due, or null. */
  nextRequestTimer(): number | null {
    let next: number | null = null;
    for (const e of this.entries) if (e.request && (next === null || e.due < next)) next = e.due;
    return next;
  }

  /** When the earliest one-shot task falls due, or null. */
  nextOneShot(): number | null {
    let next: number | null = null;
    for (const e of this.entries) if (e.period === 0 && (next === null || e.due < next)) next = e.due;
    return next;
  }

  /** Moves the clock forward by `ms`, running what falls due. */
  advance(ms: number): Promise<void> {
    if (!(ms >= 0)) return Promise.reject(new ClockMovedBackwards("the clock only moves forward"));
    return this.move(() => this.t + ms);
  }

  /** Moves the clock to `target` (epoch ms), running what falls due; never backwards. */
  set(target: number): Promise<void> {
    return this.move(() => {
      if (target < this.t) {
        throw new ClockMovedBackwards(
          `the clock is at ${new Date(this.t).toISOString()} and only moves forward`,
        );
      }
      return target;
    });
  }

  private move(target: () => number): Promise<void> {
    const run = this.moving.then(async () => {
      const to = target();
      await this.runUntil(to);
      this.t = to;
    });
    // A failed move must not wedge the ones queued after it.
    this.moving = run.catch(() => {});
    return run;
  }

  private async runUntil(to: number): Promise<void> {
    for (;;) {
      const next = this.earliest(to);
      if (!next) return;
      if (next.period > 0) {
        // Skip to the last due time before the next one-shot task (or the target).
        const oneShot = this.nextOneShot();
        const horizon = oneShot === null ? to : Math.min(oneShot, to);
        if (horizon > next.due) next.due += Math.floor((horizon - next.due) / next.period) * next.period;
      }
      this.t = Math.max(this.t, next.due);
      if (next.period > 0) next.due += next.period;
      else this.entries = this.entries.filter((e) => e !== next);
      try {
        const result = next.fn();
        if (result && typeof (result as Promise<unknown>).then === "function") await result;
      } catch (err) {
        this.onError(err);
      }
      // Let what the task set off (aborted requests, promise chains) settle before the next one.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private earliest(to: number): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.due > to) continue;
      if (!best || e.due < best.due || (e.due === best.due && e.seq < best.seq)) best = e;
    }
    return best;
  }

  private add(due: number, period: number, fn: Task, request: boolean): Cancel {
    const entry: Entry = { due, period, fn, seq: this.seq++, request };
    this.entries.push(entry);
    return () => {
      this.entries = this.entries.filter((e) => e !== entry);
    };
  }
}
