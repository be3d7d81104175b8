/**
 * The main thread's side of the writer thread (writer-worker.ts), which makes every write the data
 * plane causes: usage rows, quota counters and key last-used times. With them off the event loop,
 * a request never waits for SQLite's write lock or a WAL checkpoint. Usage rows are gathered for a
 * few milliseconds and posted in batches; posting never waits. close() hands over what is left and
 * resolves once the worker has committed all of it.
 *
 * The worker reports the store's health (status messages: on every change and each second); the
 * main thread answers /readyz and /metrics from it and refuses control-API writes while it is bad.
 * When the database file was removed or replaced, the main thread stops writing to its connection
 * (`writable` turns false, and the worker is told "hold"), and reopens it once the worker has put
 * the file back ("reopened").
 */
import type { WriteLastUsed } from "../admin/keys/last-used.ts";
import type { ShippingStatus } from "../cluster/postgres/ship.ts";
import type { Log } from "../lib/log.ts";
import { workerUrl } from "../lib/worker-url.ts";
import type { QuotaRow } from "../policies/limits/quota-store.ts";
import type { UsageSettings } from "../usage/config.ts";
import { packRows } from "../usage/packed.ts";
import type { UsageRow } from "../usage/row.ts";
import { healthyStatus, type StoreStatus } from "./store-health.ts";
import type { FromWorker, ShipTo, ToWorker } from "./writer-worker.ts";

export interface WriterThreadOptions {
  /** Reopens the main thread's connection after the worker recreated the database file. */
  reopen?: () => void;
  /** How long the worker's writes wait for SQLite's write lock before counting as failed. */
  busyTimeoutMs?: number;
  /** Cluster mode: the worker also ships usage rows to PostgreSQL (cluster/postgres/ship.ts). */
  ship?: ShipTo;
}

/** Rows gather this long (or up to POST_ROWS) before one postMessage carries them all. */
const POST_EVERY_MS = 10;
const POST_ROWS = 512;

export class WriterThread {
  private readonly worker: Worker;
  private pending: UsageRow[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closing: Promise<{ written: number; lost: number }> | undefined;
  private current: StoreStatus = healthyStatus;
  private shipped: ShippingStatus | null = null;
  /** The worker was told to hold: the main thread's connection is on a removed file. */
  private holding = false;
  private ports = 0;

  constructor(
    path: string,
    settings: UsageSettings,
    private readonly log: Log,
    private readonly options: WriterThreadOptions = {},
  ) {
    this.worker = new Worker(workerUrl("db/writer-worker.ts"));
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    this.worker.onerror = (e) => this.log("error", "writer thread failed", { error: e.message });
    this.send({
      type: "open",
      path,
      settings,
      busyTimeoutMs: options.busyTimeoutMs ?? 5_000,
      ...(options.ship ? { ship: options.ship } : {}),
    });
    // Writes alone never keep the process alive; close() holds it open until they are committed.
    this.worker.unref();
  }

  /**
   * A channel for a data-plane thread (server.threads > 1) to post its rows and last-used times
   * on; close() waits for each to say "end", or to be given up with `portGone`.
   */
  connect(): { id: number; port: MessagePort } {
    const { port1, port2 } = new MessageChannel();
    const id = this.ports++;
    this.worker.postMessage({ type: "port", id, port: port1 } satisfies ToWorker, [port1]);
    return { id, port: port2 };
  }

  /** The thread behind port `id` stopped without saying "end". */
  portGone(id: number): void {
    this.send({ type: "portGone", id });
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

  /** The store's health as the worker last reported it (at most about a second old). */
  status(): StoreStatus {
    return this.current;
  }

  /** Cluster mode: how far usage rows have reached PostgreSQL, as the worker last reported (null before). */
  shipping(): ShippingStatus | null {
    return this.shipped;
  }

  /** False while the store refuses writes or its file is being put back: control-API writes wait. */
  writable(): boolean {
    return this.current.healthy && !this.holding;
  }

  /** Commits everything posted so far, then ends the thread; `written` and `lost` count usage rows. */
  close(): Promise<{ written: number; lost: number }> {
    this.closing ??= new Promise((resolve) => {
      this.postRows();
      this.worker.ref();
      this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
        this.receive(e.data);
        if (e.data.type === "closed") {
          const result = { written: e.data.written, lost: e.data.lost };
          // Resolved once the thread has ended: SQLite closes a connection whose statements are still
          // alive only when they are collected, and that late close must not contend with the
          // checkpoint the main thread's own close makes next.
          this.worker.addEventListener("close", () => resolve(result), { once: true });
          this.worker.terminate();
        }
      };
      this.send({ type: "close" });
    });
    return this.closing;
  }

  private receive(m: FromWorker): void {
    switch (m.type) {
      case "log":
        this.log(m.level, m.msg, m.fields);
        return;
      case "status":
        this.current = m.status;
        return;
      case "shipping":
        this.shipped = m.status;
        return;
      case "gone":
        // Control-API writes are refused from now on (writable() is false), so nothing more is
        // written to the removed file once the worker copies it.
        this.holding = true;
        if (!this.closing) this.send({ type: "hold" });
        return;
      case "reopened":
        try {
          this.options.reopen?.();
          this.holding = false;
        } catch (err) {
          this.log("error", "database reopen failed; control-API writes stay refused", {
            error: String(err),
          });
        }
        return;
    }
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
