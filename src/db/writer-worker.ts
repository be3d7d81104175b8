/**
 * The writer thread. SQLite writes (and the WAL checkpoints they trigger) take tens of milliseconds
 * per batch; on the main thread they would stall every request in flight, and a main-thread write
 * waiting for this thread's write lock would stall it just the same. So every write the data plane
 * causes runs here, on a connection of its own: usage rows (batched by UsageWriter, pruned by
 * UsageRetention), quota counters and key last-used times. The main thread only posts (see
 * writer-thread.ts). Messages: open, rows, quota, lastUsed, hold, close; replies: log, status,
 * shipping, gone, reopened, closed. In cluster mode this thread also ships the usage rows it wrote
 * to PostgreSQL (cluster/postgres/ship.ts).
 *
 * Store faults. A write the database refuses (locked, full, read-only, I/O error) stays in memory
 * and is retried; StoreHealth tracks the fault, logs it and posts every change (and, each second,
 * the current counts) to the main thread. A database file that is removed or replaced under us would
 * otherwise take every later write with it: the connection keeps writing to the unlinked file. So
 * each second SQLite is asked whether the file has moved; if so, writes stop (they wait in memory),
 * the main thread is told and answers "hold" once it writes no more to its own connection, and the
 * file is then recreated from the still-open connection with VACUUM INTO (or, when another file now
 * sits at the path, that one is adopted). Both connections are then reopened on it and what waited
 * is written.
 */
import { constants, Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync } from "node:fs";
import { sqliteLastUsedWriter, type WriteLastUsed } from "../admin/keys/last-used.ts";
import type { Pg } from "../cluster/postgres/connect.ts";
import type { ShippingStatus, UsageShipper } from "../cluster/postgres/ship.ts";
import { systemClock } from "../lib/clock.ts";
import type { Log } from "../lib/log.ts";
import { timerScheduler } from "../lib/scheduler.ts";
import { type QuotaRow, SqliteQuotaStore } from "../policies/limits/quota-store.ts";
import type { UsageSettings } from "../usage/config.ts";
import { type PackedRows, unpackRows } from "../usage/packed.ts";
import { UsageRetention } from "../usage/retention.ts";
import { createBatchWriter, type WriteBatch } from "../usage/store.ts";
import { UsageWriter } from "../usage/writer.ts";
import { RetriedWrites } from "./retried-writes.ts";
import { StoreGoneError, StoreHealth, type StoreStatus } from "./store-health.ts";

/** Cluster mode: where usage rows are shipped, and as which node. */
export interface ShipTo {
  postgres: string;
  node: string;
}

export type ToWorker =
  | { type: "open"; path: string; settings: UsageSettings; busyTimeoutMs: number; ship?: ShipTo }
  | { type: "rows"; rows: PackedRows }
  | { type: "quota"; rows: QuotaRow[]; updatedAt: number }
  | { type: "lastUsed"; entries: [keyId: string, at: number][] }
  /** The main thread no longer writes to its connection: the file may be recreated. */
  | { type: "hold" }
  /**
   * A data-plane thread's own channel (server.threads > 1): it posts rows and last-used times here
   * and, when it stops, "end".
   */
  | { type: "port"; id: number; port: MessagePort }
  /** That thread is gone without saying "end": wait for it no longer. */
  | { type: "portGone"; id: number }
  | { type: "close" };

/** What a data-plane thread posts on its port. */
export type FromDataThread = Extract<ToWorker, { type: "rows" | "lastUsed" }> | { type: "end" };

export type FromWorker =
  | { type: "log"; level: Parameters<Log>[0]; msg: string; fields?: Record<string, unknown> }
  | { type: "status"; status: StoreStatus }
  /** Cluster mode: how far usage rows have reached PostgreSQL. */
  | { type: "shipping"; status: ShippingStatus }
  /** The database file was removed or replaced: the main thread stops writing and answers "hold". */
  | { type: "gone" }
  /** The database file was recreated or replaced: the main thread reopens its connection too. */
  | { type: "reopened" }
  | { type: "closed"; written: number; lost: number };

declare const self: Worker;
const reply = (m: FromWorker) => self.postMessage(m);
const log: Log = (level, msg, fields) => reply({ type: "log", level, msg, fields });

/** How often the file is checked and the status (with its counts) is posted. */
const CHECK_EVERY_MS = 1_000;
const FILE = "database file";

type StampedRow = QuotaRow & { updatedAt: number };

/** One connection and the statements prepared on it. */
interface Connection {
  sqlite: Database;
  writeRows: WriteBatch;
  quotas: SqliteQuotaStore;
  writeLastUsed: WriteLastUsed;
  retention: UsageRetention;
}

let path = "";
let settings: UsageSettings;
let busyTimeoutMs = 5_000;
let conn: Connection | undefined;
/** The file at `path` is no longer the one `conn` writes to. */
let gone = false;
/** The main thread has stopped writing to its own connection since `gone` was reported. */
let held = false;
let health: StoreHealth | undefined;
let writer: UsageWriter | undefined;
let quotas: RetriedWrites<StampedRow> | undefined;
let lastUsed: RetriedWrites<number> | undefined;
let checker: ReturnType<typeof setInterval> | undefined;
let shipTo: ShipTo | undefined;
let pg: Pg | undefined;
let shipper: UsageShipper | undefined;
let shipping: Promise<void> | undefined;
/** Data-plane threads' ports that have not said "end": close() writes only after all have. */
const openPorts = new Map<number, MessagePort>();
let portsEnded: (() => void) | undefined;

function portEnded(id: number): void {
  openPorts.get(id)?.close();
  openPorts.delete(id);
  if (openPorts.size === 0) portsEnded?.();
}

function connect(): Connection {
  const sqlite = new Database(path, { strict: true });
  try {
    sqlite.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    sqlite.exec(`PRAGMA synchronous = ${settings.synchronous === "full" ? "FULL" : "NORMAL"}`);
    sqlite.exec("PRAGMA journal_mode = WAL");
    const retention = new UsageRetention({
      sqlite,
      clock: systemClock,
      log,
      retentionMs: settings.retentionMs,
      // Cluster mode: rows PostgreSQL does not have yet stay.
      ...(shipTo ? { shippedThrough: () => shipper?.shippedThrough ?? 0 } : {}),
    });
    retention.start();
    return {
      sqlite,
      writeRows: createBatchWriter(sqlite),
      quotas: new SqliteQuotaStore(sqlite),
      writeLastUsed: sqliteLastUsedWriter(sqlite),
      retention,
    };
  } catch (err) {
    sqlite.close();
    throw err;
  }
}

/** The connection to write with; throws while the file it wrote to is gone. */
function usable(): Connection {
  if (gone || !conn) throw new StoreGoneError(`${path} was removed or replaced`);
  return conn;
}

function open(): void {
  conn = connect();
  health = new StoreHealth({
    clock: systemClock,
    log,
    counts: () => ({
      buffered: writer?.size ?? 0,
      dropped: writer?.stats().dropped ?? 0,
      retries: writer?.stats().failedFlushes ?? 0,
      waiting: (quotas?.waiting ?? 0) + (lastUsed?.waiting ?? 0),
    }),
    onChange: (status) => reply({ type: "status", status }),
  });
  const h = health;
  writer = new UsageWriter({
    write: (rows) => usable().writeRows(rows),
    clock: systemClock,
    log,
    flushRows: settings.flushRows,
    flushIntervalMs: settings.flushIntervalMs,
    bufferRows: settings.bufferRows,
    health: h,
  });
  quotas = new RetriedWrites<StampedRow>(
    (batch) => {
      // One stamp for the batch: a retried row is stamped when it finally lands.
      let at = 0;
      for (const r of batch.values()) at = Math.max(at, r.updatedAt);
      usable().quotas.save([...batch.values()], at);
      h.succeeded("quota counters");
    },
    // Counts carry absolute values, so the later message holds the current one.
    (_held, next) => next,
    (err) => h.failed("quota counters", err),
  );
  lastUsed = new RetriedWrites<number>(
    (batch) => {
      usable().writeLastUsed(batch);
      h.succeeded("key last-used times");
    },
    (held, next) => Math.max(held, next),
    (err) => h.failed("key last-used times", err),
  );
  checker = setInterval(check, CHECK_EVERY_MS);
}

/** Cluster mode: loaded only then, so one node never loads PostgreSQL's client. */
async function startShipping(to: ShipTo): Promise<void> {
  const [{ connectPg }, { UsageShipper }] = await Promise.all([
    import("../cluster/postgres/connect.ts"),
    import("../cluster/postgres/ship.ts"),
  ]);
  pg = connectPg(to.postgres, { max: 2 });
  shipper = new UsageShipper({
    // The connection that holds every committed row, also while its file is being put back.
    sqlite: () => conn!.sqlite,
    pg,
    node: to.node,
    log,
    clock: systemClock,
    scheduler: timerScheduler,
  });
  shipper.start();
}

function check(): void {
  if (!gone && conn && hasMoved(conn.sqlite)) {
    gone = true;
    held = false;
    health?.failed(FILE, new StoreGoneError(`${path} was removed or replaced while open`));
    reply({ type: "gone" });
  } else if (gone && held) {
    recover();
  }
  // The counts change without a change of state; the main thread shows them in /readyz and /metrics.
  if (health) reply({ type: "status", status: health.status() });
  if (shipper) reply({ type: "shipping", status: shipper.status() });
}

function hasMoved(sqlite: Database): boolean {
  // SQLite compares the path's file with the one it holds open (bun wants at least 8 bytes here).
  const out = new Int32Array(2);
  return sqlite.fileControl(constants.SQLITE_FCNTL_HAS_MOVED, out) === 0 && out[0] !== 0;
}

/**
 * Puts a database back at `path`: a copy of the still-open one (everything committed so far, also
 * what was written after the file went), or the file someone put there instead. Then reopens on it.
 */
function recover(): void {
  const old = conn;
  if (old) {
    try {
      if (!existsSync(path)) {
        // Copied beside it and renamed, so a half-written copy never sits at the path.
        const copy = `${path}.recovering`;
        rmSync(copy, { force: true });
        old.sqlite.run("VACUUM INTO ?", [copy]);
        renameSync(copy, path);
      }
    } catch (err) {
      health?.failed(FILE, new StoreGoneError(`${path} cannot be recreated yet: ${String(err)}`));
      return;
    }
    // The old connection closes before the new one writes anything. Its WAL and shared-memory files
    // are found by name, so they are the new file's too, and a close that SQLite defers until the
    // last statement is garbage-collected was seen to checkpoint what the new connection had written
    // into the old file and truncate the shared WAL. Its statements are all cached (`query`), so
    // close() finalizes them and closes now; a retention sweep stops before its next batch.
    conn = undefined;
    void old.retention.stop();
    closeDetached(old.sqlite);
  }
  try {
    conn = connect();
  } catch (err) {
    health?.failed(FILE, new StoreGoneError(`${path} cannot be reopened yet: ${String(err)}`));
    return;
  }
  gone = false;
  held = false;
  log("warn", "database file recreated; writes resume", { path });
  reply({ type: "reopened" });
  health?.succeeded(FILE);
  writer?.flush();
  quotas?.flush();
  lastUsed?.flush();
}

/**
 * Closes a connection whose file was removed. SQLite already skips the closing checkpoint of a moved
 * file; persistent-WAL mode also keeps it from deleting the -wal and -shm now at the path by name.
 */
function closeDetached(sqlite: Database): void {
  sqlite.fileControl(constants.SQLITE_FCNTL_PERSIST_WAL, 1);
  sqlite.close();
}

/** Rows and last-used times, from the main thread or a data-plane thread's port. */
function receive(m: Extract<ToWorker, { type: "rows" | "lastUsed" }>): void {
  if (m.type === "rows") for (const row of unpackRows(m.rows)) writer?.record(row);
  else lastUsed?.add(m.entries);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const m = event.data;
  switch (m.type) {
    case "open":
      path = m.path;
      settings = m.settings;
      busyTimeoutMs = m.busyTimeoutMs;
      shipTo = m.ship;
      open();
      if (shipTo) {
        shipping = startShipping(shipTo).catch((err) =>
          log("error", "usage rows cannot be shipped: the PostgreSQL client did not load", {
            error: String(err),
          }),
        );
      }
      return;
    case "rows":
      receive(m);
      return;
    case "quota":
      quotas?.add(m.rows.map((r) => [`${r.scope}\0${r.periodStart}`, { ...r, updatedAt: m.updatedAt }]));
      return;
    case "lastUsed":
      receive(m);
      return;
    case "hold":
      held = true;
      if (gone) recover();
      return;
    case "port": {
      const { id, port } = m;
      openPorts.set(id, port);
      port.onmessage = (e) => {
        const d = e.data as FromDataThread;
        if (d.type === "end") portEnded(id);
        else receive(d);
      };
      return;
    }
    case "portGone":
      portEnded(m.id);
      return;
    case "close": {
      // Every data-plane thread's last rows come first.
      if (openPorts.size > 0) await new Promise<void>((resolve) => (portsEnded = resolve));
      clearInterval(checker);
      // The main thread writes nothing more: a removed file can be put back one last time.
      if (gone) recover();
      await conn?.retention.stop();
      for (const [what, writes] of [
        ["quota counters", quotas],
        ["key last-used times", lastUsed],
      ] as const) {
        if (writes && !writes.flush()) log("error", `${what} lost at shutdown`, { lost: writes.stop() });
      }
      const result = writer?.close() ?? { written: 0, lost: 0 };
      // After the last rows are in SQLite: what PostgreSQL can take now goes, the rest at the next start.
      await shipping;
      await shipper?.stop();
      await pg?.close();
      if (conn && gone) closeDetached(conn.sqlite);
      else conn?.sqlite.close();
      reply({ type: "closed", ...result });
      return;
    }
  }
};
