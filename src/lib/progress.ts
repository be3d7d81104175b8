/**
 * Progress of long start-up work (a cold sync of thousands of keys): a line after each second of it,
 * so a slow start is seen to move; quick work logs nothing.
 */
import type { Clock } from "./clock.ts";
import type { Log } from "./log.ts";

export type ReportProgress = (step: string, done?: number, total?: number) => void;

export function progressLog(clock: Clock, log: Log, everyMs = 1_000): ReportProgress {
  const started = clock.now();
  let last = started;
  return (step, done, total) => {
    const now = clock.now();
    if (now - last < everyMs) return;
    last = now;
    log("info", "starting", {
      step,
      ...(done === undefined ? {} : { done, total }),
      elapsedMs: now - started,
    });
  };
}
