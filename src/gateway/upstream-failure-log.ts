/**
 * Logs upstream failures without letting a dead upstream flood the log: per upstream and cause, the
 * first failure is logged at once, and the failures of each following period (10 s) in one line with
 * their count and the last request id, until a period passes without one. At debug level every
 * failure also gets a line of its own. Lines name the upstream, never its URL or injected headers.
 */
import type { Log } from "../lib/log.ts";
import type { Cancel, Scheduler } from "../lib/scheduler.ts";
import type { UpstreamFailure } from "./upstream-failure.ts";

export interface FailureReport {
  upstream: string;
  cause: UpstreamFailure;
  requestId: string;
  /** The error's code (ECONNREFUSED), when it had one. */
  code: string | undefined;
}

interface Period {
  report: FailureReport;
  /** Failures since the last line. */
  count: number;
  end: Cancel;
}

const MESSAGE = "upstream request failed";

export class UpstreamFailureLog {
  private readonly periods = new Map<string, Period>();

  constructor(private readonly o: { log: Log; scheduler: Scheduler; periodMs?: number }) {}

  report(r: FailureReport): void {
    this.o.log("debug", MESSAGE, fields(r, 1));
    const id = `${r.upstream}\u0000${r.cause}`;
    const open = this.periods.get(id);
    if (open) {
      open.report = r;
      open.count++;
      return;
    }
    this.o.log("warn", MESSAGE, fields(r, 1));
    this.periods.set(id, { report: r, count: 0, end: this.endAfterPeriod(id) });
  }

  /** Logs what the open periods counted; at shutdown. */
  close(): void {
    for (const p of this.periods.values()) {
      p.end();
      if (p.count > 0) this.o.log("warn", MESSAGE, fields(p.report, p.count));
    }
    this.periods.clear();
  }

  private endAfterPeriod(id: string): Cancel {
    return this.o.scheduler.after(this.o.periodMs ?? 10_000, () => {
      const p = this.periods.get(id);
      if (!p) return;
      if (p.count === 0) {
        this.periods.delete(id);
        return;
      }
      this.o.log("warn", MESSAGE, fields(p.report, p.count));
      p.count = 0;
      p.end = this.endAfterPeriod(id);
    });
  }
}

function fields(r: FailureReport, count: number): Record<string, unknown> {
  return {
    upstream: r.upstream,
    cause: r.cause,
    ...(r.code === undefined ? {} : { error: r.code }),
    requestId: r.requestId,
    count,
  };
}
