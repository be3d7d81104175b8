/**
 * The main thread's side of the writer thread (writer-worker.ts), which makes every write the data
 * plane causes: usage rows, quota counters and key last-used times. With them off the event loop,
 * a request never waits for SQLite's write lock or a WAL checkpoint. Usage rows are gathered for a
 * few milliseconds and posted in batches; posting never waits. close() hands over what is left and
 * resolves once the worker has committed all of it.
 */
import type { WriteLastUsed } from "../admin/keys/last-used.ts";
import type { Log } from "../lib/log.ts";
import type { QuotaRow } from "../policies/limits/quota-store.ts";
import type { UsageSettings } from "../usage/config.ts";
import { packRows } from "../usage/packed.ts";
import type { UsageRow } from "../usage/row.ts";
import type { FromWorker, ToWorker } from "./writer-worker.ts";

/** Rows gather this long (or up to POST_ROWS) before one postMessage carries them all. */
const POST_EVERY_MS = 10;
const POST_ROWS = 512;

export class WriterThread {
  private readonly worker: Worker;
  private pending: UsageRow[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closing: Promise<{ written: number; lost: number }> | undefined;

  constructor(
    path: string,
    settings: UsageSettings,
    private readonly log: Log,
  ) {
    this.worker = new Worker(new URL("./writer-worker.ts", import.meta.url).href);
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (e.data.type === "log") this.log(e.data.level, e.data.msg, e.data.fields);
    };
    this.worker.onerror = (e) => this.log("error", "writer thread failed", { error: e.message });
    this.send({ type: "open", path, settings });
    // Writes alone never keep the process alive; close() holds it open until they are committed.
    this.worker.unref();
  }

  /** Queues one usage row. */
  readonly recordRow = (row: UsageRow): void => {
    this.pending.push(row);
    if (this.pending.length >= POST_ROWS) this.postRows();
    else this.timer ??= setTimeout(this.postRows, POST_EVERY_MS);
  };

  /** A QuotaStore's save: the worker keeps the rows until they are written. */
  readonly saveQuota = (rows: readonly QuotaRow[], updatedAt: number): void => {
    if (rows.length > 0) this.send({ type: "quota", rows: rows.slice(), updatedAt });
  };

  /** A LastUsedTracker's write: the worker keeps the times until they are written. */
  readonly saveLastUsed: WriteLastUsed = (batch) => {
    if (batch.size > 0) this.send({ type: "lastUsed", entries: [...batch] });
  };

  /** Commits everything posted so far, then ends the thread; `written` and `lost` count usage rows. */
  close(): Promise<{ written: number; lost: number }> {
    this.closing ??= new Promise((resolve) => {
      this.postRows();
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

  private readonly postRows = (): void => {
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
