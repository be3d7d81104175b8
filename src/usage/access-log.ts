/**
 * The access log: one JSON line per request, exactly the line GET /usage/export gives for its usage
 * row (format=ndjson, granularity=raw), so it never holds a key or the query string either.
 *
 * Writing never blocks or fails a request. Lines are gathered and handed to the destination once per
 * timer tick; when the destination is slow (a pipe nobody reads, a slow disk) it asks to wait, lines
 * gather in memory up to a bound, and past it they are dropped and counted. A destination that fails
 * (EPIPE, disk full) is given up: its error is logged once, and further lines are counted as dropped.
 */
import { closeSync, createWriteStream, openSync } from "node:fs";
import { resolve } from "node:path";
import type { Log } from "../lib/log.ts";
import type { Cancel, Scheduler } from "../lib/scheduler.ts";
import { RAW_COLUMNS } from "./export.ts";
import { ndjsonLine } from "./format.ts";
import type { UsageRow } from "./row.ts";

/** What the access log writes to: process.stderr, process.stdout or a file's write stream. */
export interface AccessSink {
  /** False asks the writer to wait for "drain" before writing more. */
  write(chunk: string): boolean;
  once(event: "drain", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
}

/** Lines waiting while the destination is slow, in characters (about bytes for these ASCII-heavy lines). */
export const ACCESS_LOG_BUFFER = 1024 * 1024;
/** Lines gathered this long are written in one call. */
const WRITE_EVERY_MS = 10;

/** The usage row as the raw export's NDJSON line. */
export function accessLine(r: UsageRow): string {
  return ndjsonLine(RAW_COLUMNS, [
    new Date(r.ts).toISOString(),
    r.requestId,
    r.tenantId,
    r.keyId,
    r.route,
    r.method,
    r.path,
    r.status,
    r.outcome,
    r.cost,
    r.bytesIn,
    r.bytesOut,
    r.latencyMs,
    r.upstreamMs,
    r.wouldRefuse,
  ]);
}

export class AccessLog {
  /** Lines, or chunks of lines another thread gathered (`relay`). */
  private lines: string[] = [];
  /** Lines in `lines`. */
  private queued = 0;
  private size = 0;
  /** The destination asked to wait for "drain". */
  private waiting = false;
  private failed = false;
  private timer: Cancel | null = null;
  private readonly counts = { written: 0, dropped: 0 };

  constructor(
    private readonly o: {
      sink: AccessSink;
      /** Real time, also in test mode: this is output, not a decision. */
      scheduler: Scheduler;
      log: Log;
      /** Closes the destination when it is a file of ours. */
      close?: () => Promise<void>;
      bufferChars?: number;
    },
  ) {
    o.sink.on("error", (err) => this.fail(err));
  }

  /** Queues the request's line; never throws, never waits. */
  record(row: UsageRow): void {
    if (this.failed) {
      this.counts.dropped++;
      return;
    }
    const line = accessLine(row);
    if (this.size + line.length > (this.o.bufferChars ?? ACCESS_LOG_BUFFER)) {
      this.counts.dropped++;
      return;
    }
    this.lines.push(line);
    this.queued++;
    this.size += line.length;
    if (!this.waiting) this.timer ??= this.o.scheduler.after(WRITE_EVERY_MS, this.flush);
  }

  /**
   * Queues `lines` lines a data-plane thread gathered into one chunk (threads/worker.ts), so that
   * lines of all threads reach the one destination whole, each written once.
   */
  relay(chunk: string, lines: number): void {
    if (this.failed || this.size + chunk.length > (this.o.bufferChars ?? ACCESS_LOG_BUFFER)) {
      this.counts.dropped += lines;
      return;
    }
    this.lines.push(chunk);
    this.queued += lines;
    this.size += chunk.length;
    if (!this.waiting) this.timer ??= this.o.scheduler.after(WRITE_EVERY_MS, this.flush);
  }

  stats(): { written: number; dropped: number } {
    return { ...this.counts };
  }

  /**
   * Hands over what is queued, even to a destination that asked to wait (what is left is bounded, and
   * a file's stream writes it before it closes), and closes a file destination.
   */
  async close(): Promise<void> {
    this.timer?.();
    this.timer = null;
    this.waiting = false;
    this.flush();
    this.failed = true;
    await this.o.close?.();
  }

  private readonly flush = (): void => {
    this.timer = null;
    if (this.waiting || this.failed || this.lines.length === 0) return;
    const chunk = this.lines.join("");
    const n = this.queued;
    this.lines = [];
    this.queued = 0;
    this.size = 0;
    try {
      this.waiting = !this.o.sink.write(chunk);
      this.counts.written += n;
    } catch (err) {
      this.counts.dropped += n;
      this.fail(err);
      return;
    }
    if (this.waiting) {
      this.o.sink.once("drain", () => {
        this.waiting = false;
        this.flush();
      });
    }
  };

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.counts.dropped += this.queued;
    this.lines = [];
    this.queued = 0;
    this.size = 0;
    const code = (err as { code?: unknown })?.code;
    this.o.log("error", "the access log cannot be written; its lines are dropped from now on", {
      error: typeof code === "string" ? code : String(err),
    });
  }
}

/**
 * The destination `log.access` names, or null for "off". A file is opened (created if missing) for
 * appending here, so that a path that cannot be written fails at start-up; throws the system error.
 */
export function openAccessSink(
  target: string,
): { sink: AccessSink; close?: () => Promise<void>; path?: string } | null {
  if (target === "off") return null;
  if (target === "stderr") return { sink: process.stderr };
  if (target === "stdout") return { sink: process.stdout };
  const path = resolve(target);
  const fd = openSync(path, "a");
  let stream: ReturnType<typeof createWriteStream>;
  try {
    stream = createWriteStream(path, { fd });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return {
    sink: stream,
    path,
    close: () =>
      new Promise<void>((done) => {
        if (stream.destroyed) return done();
        stream.end(() => done());
        stream.once("error", () => done());
      }),
  };
}
