/**
 * The main thread's side of the usage writer thread (worker.ts): rows are built here, where the
 * request context lives, gathered for a few milliseconds and posted in batches. Posting never waits;
 * close() hands over what is left and resolves once the worker has committed every row.
 */
import type { Log } from "../lib/log.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";
import type { UsageSettings } from "./config.ts";
import { packRows } from "./packed.ts";
import { type UsageRow, usageRow } from "./row.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

/** Rows gather this long (or up to POST_ROWS) before one postMessage carries them all. */
const POST_EVERY_MS = 10;
const POST_ROWS = 512;

export class UsageThread {
  private readonly worker: Worker;
  private pending: UsageRow[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closing: Promise<{ written: number; lost: number }> | undefined;

  constructor(
    path: string,
    settings: UsageSettings,
    private readonly log: Log,
  ) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url).href);
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (e.data.type === "log") this.log(e.data.level, e.data.msg, e.data.fields);
    };
    this.worker.onerror = (e) => this.log("error", "usage writer thread failed", { error: e.message });
    this.send({ type: "open", path, settings });
    // Metering alone never keeps the process alive; close() holds it open until rows are written.
    this.worker.unref();
  }

  /** The data plane's observe hook: builds the row and queues it. Never throws. */
  readonly observe = (ctx: RequestContext, outcome: RequestOutcome): void => {
    try {
      this.pending.push(usageRow(ctx, outcome));
    } catch (err) {
      this.log("error", "usage row could not be built", { requestId: ctx.requestId, error: String(err) });
      return;
    }
    if (this.pending.length >= POST_ROWS) this.post();
    else this.timer ??= setTimeout(this.post, POST_EVERY_MS);
  };

  close(): Promise<{ written: number; lost: number }> {
    this.closing ??= new Promise((resolve) => {
      this.post();
      this.worker.ref();
      this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
        if (e.data.type === "log") this.log(e.data.level, e.data.msg, e.data.fields);
        if (e.data.type === "closed") {
          this.worker.terminate();
          resolve({ written: e.data.written, lost: e.data.lost });
        }
      };
      this.send({ type: "close" });
    });
    return this.closing;
  }

  private readonly post = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const rows = packRows(this.pending);
    this.pending = [];
    this.send({ type: "rows", rows }, [rows.numbers.buffer]);
  };

  private send(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer);
  }
}
