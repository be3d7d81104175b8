import type { Clock } from "../../lib/clock.ts";
import { type Scheduler, timerScheduler } from "../../lib/scheduler.ts";
import type { QuotaCounters } from "./quota-counters.ts";
import type { SlidingWindows } from "./sliding-windows.ts";

export interface MaintenanceOptions {
  readonly clock: Clock;
  readonly windows: SlidingWindows;
  readonly quotas: QuotaCounters;
  /** How often quota counters are written (default 1 s): the most a crash can lose. */
  readonly flushEveryMs?: number;
  /** How often idle counters are dropped (default 60 s). */
  readonly sweepEveryMs?: number;
  /** A failed flush keeps its rows for the next one; report it here (default: console.error). */
  readonly onError?: (err: unknown) => void;
  /** Runs the timers (default: real, unref'd timers that never keep the process alive). */
  readonly scheduler?: Scheduler;
}

/**
 * Flushes quotas and sweeps idle counters on timers. `stop()` ends the timers and flushes once more,
 * so call it on shutdown after the last request has finished.
 */
export function startLimitsMaintenance(opts: MaintenanceOptions): { stop(): void } {
  const { clock, windows, quotas } = opts;
  const onError = opts.onError ?? ((err: unknown) => console.error("quota flush failed:", err));
  const scheduler = opts.scheduler ?? timerScheduler;
  const flush = () => {
    try {
      quotas.flush(clock.now());
    } catch (err) {
      onError(err);
    }
  };
  const stopFlush = scheduler.every(opts.flushEveryMs ?? 1000, flush);
  const stopSweep = scheduler.every(opts.sweepEveryMs ?? 60_000, () => {
    const now = clock.now();
    windows.sweep(now);
    quotas.sweep(now);
  });
  return {
    stop() {
      stopFlush();
      stopSweep();
      flush();
    },
  };
}
