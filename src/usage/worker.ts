/**
 * The usage writer's own thread. SQLite writes (and the WAL checkpoints they trigger) take tens of
 * milliseconds per batch; on the main thread they would stall every request in flight. Here they run
 * on a connection of their own while the data plane keeps serving; the main thread only builds rows
 * and posts them (see thread.ts). Messages: open, rows, close; replies: log, closed.
 */
import { Database } from "bun:sqlite";
import { systemClock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import type { UsageSettings } from "./config.ts";
import { type PackedRows, unpackRows } from "./packed.ts";
import { UsageRetention } from "./retention.ts";
import { createBatchWriter } from "./store.ts";
import { UsageWriter } from "./writer.ts";

export type ToWorker =
  | { type: "open"; path: string; settings: UsageSettings }
  | { type: "rows"; rows: PackedRows }
  | { type: "close" };

export type FromWorker =
  | { type: "log"; level: Parameters<Log>[0]; msg: string; fields?: Record<string, unknown> }
  | { type: "closed"; written: number; lost: number };

declare const self: Worker;
const reply = (m: FromWorker) => self.postMessage(m);
const log: Log = (level, msg, fields) => reply({ type: "log", level, msg, fields });

let db: Database | undefined;
let writer: UsageWriter | undefined;
let retention: UsageRetention | undefined;

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const m = event.data;
  switch (m.type) {
    case "open": {
      db = new Database(m.path, { strict: true });
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec(`PRAGMA synchronous = ${m.settings.synchronous === "full" ? "FULL" : "NORMAL"}`);
      const s = m.settings;
      writer = new UsageWriter({
        write: createBatchWriter(db),
        clock: systemClock,
        log,
        flushRows: s.flushRows,
        flushIntervalMs: s.flushIntervalMs,
        bufferRows: s.bufferRows,
      });
      retention = new UsageRetention({ sqlite: db, clock: systemClock, log, retentionMs: s.retentionMs });
      retention.start();
      return;
    }
    case "rows":
      for (const row of unpackRows(m.rows)) writer?.record(row);
      return;
    case "close": {
      await retention?.stop();
      const result = writer?.close() ?? { written: 0, lost: 0 };
      db?.close();
      reply({ type: "closed", ...result });
      return;
    }
  }
};
