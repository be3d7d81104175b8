/**
 * The writer thread takes every write the data plane causes. Posting must never wait on SQLite: the
 * tests hold the database's write lock from another connection while posting, which would block a
 * synchronous write for the whole busy timeout and then fail it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import { openDb } from "../../src/db/open.ts";
import { syncConfig } from "../../src/db/sync.ts";
import { WriterThread } from "../../src/db/writer-thread.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import type { Log } from "../../src/lib/log.ts";
import { usageSettings } from "../../src/usage/config.ts";
import { row } from "../usage/helpers.ts";

const silent: Log = () => {};
let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function database() {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-writer-"));
  const path = join(dir, "gatehouse.db");
  const db = openDb(path);
  const config = parseConfig(
    'version: 1\nupstreams: { e: { mock: echo } }\nplans: { free: {} }\nroutes: [{ match: "* /**", upstream: e }]\n' +
      "tenants:\n  acme: { plan: free, keys: [{ id: acme-1, secret: acme-secret-one }] }\n",
    "gateway.yaml",
    {},
  );
  syncConfig(db, config, new ManualClock());
  return { path, db };
}

describe("WriterThread", () => {
  test("usage rows, quota counters and last-used times posted while the database is locked all land", async () => {
    const { path, db } = database();
    const thread = new WriterThread(path, usageSettings(), silent);
    // Another connection holds the write lock: a write on this thread would wait for it.
    db.sqlite.exec("BEGIN IMMEDIATE");
    thread.recordRow(row({ requestId: "r-1" }));
    thread.saveQuota([{ scope: "tenant:acme:daily", periodStart: 1_000, used: 7 }], 2_000);
    thread.saveQuota([{ scope: "tenant:acme:daily", periodStart: 1_000, used: 9 }], 3_000);
    thread.saveLastUsed(new Map([["acme-1", 5_000]]));
    db.sqlite.exec("COMMIT");

    expect(await thread.close()).toEqual({ written: 1, lost: 0 });
    const q = db.sqlite.query("SELECT scope, period_start, used FROM quota_usage").all();
    expect(q).toEqual([{ scope: "tenant:acme:daily", period_start: 1_000, used: 9 }]);
    expect(db.sqlite.query("SELECT last_used_at FROM api_keys WHERE id = 'acme-1'").get()).toEqual({
      last_used_at: 5_000,
    });
    expect(db.sqlite.query("SELECT request_id FROM usage").all()).toEqual([{ request_id: "r-1" }]);
    db.close();
  });

  test("a refused write is reported to the main thread, and so is its recovery", async () => {
    const { path, db } = database();
    const thread = new WriterThread(path, usageSettings({ flushInterval: "10ms" }), silent, {
      busyTimeoutMs: 50,
    });
    db.sqlite.exec("BEGIN IMMEDIATE");
    thread.recordRow(row({ requestId: "r-1" }));
    await until(() => !thread.status().healthy);
    expect(thread.status()).toMatchObject({ fault: "locked", buffered: 1, dropped: 0 });
    expect(thread.writable()).toBe(false);
    db.sqlite.exec("COMMIT");
    await until(() => thread.status().healthy);
    expect(thread.writable()).toBe(true);
    expect(await thread.close()).toEqual({ written: 0, lost: 0 });
    expect(db.sqlite.query("SELECT request_id FROM usage").all()).toEqual([{ request_id: "r-1" }]);
    db.close();
  });

  test("a removed database file is put back from the open connection, and the main thread reopens", async () => {
    const { path, db } = database();
    let reopened = 0;
    const thread = new WriterThread(path, usageSettings({ flushInterval: "10ms" }), silent, {
      reopen: () => {
        db.reopen();
        reopened++;
      },
    });
    thread.recordRow(row({ requestId: "before" }));
    await until(() => (db.sqlite.query("SELECT count(*) AS n FROM usage").get() as { n: number }).n === 1);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f);
    thread.recordRow(row({ requestId: "after" }));
    await until(() => reopened === 1);
    expect(existsSync(path)).toBe(true);
    expect((await thread.close()).lost).toBe(0);
    expect(db.sqlite.query("SELECT request_id FROM usage ORDER BY id").all()).toEqual([
      { request_id: "before" },
      { request_id: "after" },
    ]);
    db.close();
  });

  test("a database file replaced by another one is adopted: what follows is written there", async () => {
    const { path, db } = database();
    let reopened = 0;
    const thread = new WriterThread(path, usageSettings({ flushInterval: "10ms" }), silent, {
      reopen: () => {
        db.reopen();
        reopened++;
      },
    });
    thread.recordRow(row({ requestId: "before-backup" }));
    await until(() => (db.sqlite.query("SELECT count(*) AS n FROM usage").get() as { n: number }).n === 1);
    // An operator restores a copy: a new file (another inode) now sits at the path.
    db.sqlite.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    copyFileSync(path, `${path}.restored`);
    renameSync(`${path}.restored`, path);
    // A row written before the thread notices goes to the old file (see the README): only after it
    // has switched is a row certain to land in the new one.
    await until(() => reopened === 1);
    thread.recordRow(row({ requestId: "after-restore" }));
    expect((await thread.close()).lost).toBe(0);
    expect(db.sqlite.query("SELECT request_id FROM usage ORDER BY id").all()).toEqual([
      { request_id: "before-backup" },
      { request_id: "after-restore" },
    ]);
    db.close();
  });
});

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await Bun.sleep(10);
  }
}
