/**
 * The writer thread. SQLite writes (and the WAL checkpoints they trigger) take tens of milliseconds
 * per batch; on the main thread they would stall every request in flight, and a main-thread write
 * waiting for this thread's write lock would stall it just the same. So every write the data plane
 * causes runs here, on a connection of its own: usage rows (batched by UsageWriter, pruned by
 * UsageRetention), quota counters and key last-used times. The main thread only posts (see
 * writer-thread.ts). Messages: open, rows, quota, lastUsed, close; replies: log, closed.
 */
import { Database } from "bun:sqlite";
import { sqliteLastUsedWriter } from "../admin/keys/last-used.ts";
import { systemClock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import { type QuotaRow, SqliteQuotaStore } from "../policies/limits/quota-store.ts";
import type { UsageSettings } from "../usage/config.ts";
import { type PackedRows, unpackRows } from "../usage/packed.ts";
import { UsageRetention } from "../usage/retention.ts";
import { createBatchWriter } from "../usage/store.ts";
import { UsageWriter } from "../usage/writer.ts";
import { RetriedWrites } from "./retried-writes.ts";

export type ToWorker =
  | { type: "open"; path: string; settings: UsageSettings }
  | { type: "rows"; rows: PackedRows }
  | { type: "quota"; rows: QuotaRow[]; updatedAt: number }
  | { type: "lastUsed"; entries: [keyId: string, at: number][] }
  | { type: "close" };

export type FromWorker =
  | { type: "log"; level: Parameters<Log>[0]; msg: string; fields?: Record<string, unknown> }
  | { type: "closed"; written: number; lost: number };

declare const self: Worker;
const reply = (m: FromWorker) => self.postMessage(m);
const log: Log = (level, msg, fields) => reply({ type: "log", level, msg, fields });

type StampedRow = QuotaRow & { updatedAt: number };

let db: Database | undefined;
let writer: UsageWriter | undefined;
let retention: UsageRetention | undefined;
let quotas: RetriedWrites<StampedRow> | undefined;
let lastUsed: RetriedWrites<number> | undefined;

function open(path: string, s: UsageSettings): void {
  const sqlite = new Database(path, { strict: true });
  sqlite.exec("PRAGMA busy_timeout = 5000");
  sqlite.exec(`PRAGMA synchronous = ${s.synchronous === "full" ? "FULL" : "NORMAL"}`);
  db = sqlite;
  writer = new UsageWriter({
    write: createBatchWriter(sqlite),
    clock: systemClock,
    log,
    flushRows: s.flushRows,
    flushIntervalMs: s.flushIntervalMs,
    bufferRows: s.bufferRows,
  });
  retention = new UsageRetention({ sqlite, clock: systemClock, log, retentionMs: s.retentionMs });
  retention.start();
  const store = new SqliteQuotaStore(sqlite);
  quotas = new RetriedWrites<StampedRow>(
    (batch) => {
      // One stamp for the batch: a retried row is stamped when it finally lands.
      let at = 0;
      for (const r of batch.values()) at = Math.max(at, r.updatedAt);
      store.save([...batch.values()], at);
    },
    // Counts carry absolute values, so the later message holds the current one.
    (_held, next) => next,
    (err, waiting) => log("error", "quota flush failed; retrying", { error: String(err), waiting }),
  );
  lastUsed = new RetriedWrites<number>(
    sqliteLastUsedWriter(sqlite),
    (held, next) => Math.max(held, next),
    (err, waiting) => log("error", "last-used write failed; retrying", { error: String(err), waiting }),
  );
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const m = event.data;
  switch (m.type) {
    case "open":
      open(m.path, m.settings);
      return;
    case "rows":
      for (const row of unpackRows(m.rows)) writer?.record(row);
      return;
    case "quota":
      quotas?.add(m.rows.map((r) => [`${r.scope}\0${r.periodStart}`, { ...r, updatedAt: m.updatedAt }]));
      return;
    case "lastUsed":
      lastUsed?.add(m.entries);
      return;
    case "close": {
      await retention?.stop();
      for (const [what, writes] of [
        ["quota counters", quotas],
        ["key last-used times", lastUsed],
      ] as const) {
        if (writes && !writes.flush()) log("error", `${what} lost at shutdown`, { lost: writes.stop() });
      }
      const result = writer?.close() ?? { written: 0, lost: 0 };
      db?.close();
      reply({ type: "closed", ...result });
      return;
    }
  }
};
