/**
 * Store faults against a real gatehouse process on a database file, while traffic flows: a write
 * lock held by another process, a disk that fills up, a database file that turns read-only, and one
 * that is removed. Every request must be answered normally, and every usage row must be in the file
 * once the fault has passed. Faults that need mounts skip with the reason when not permitted.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GatehouseProcess } from "./support/process.ts";
import {
  CONFIG,
  countRows,
  ext4Permitted,
  logLines,
  metricsText,
  mountExt4,
  mountsPermitted,
  mountTmpfs,
  query,
  readyz,
  run,
  startOnDb,
  startTraffic,
  stopProcess,
  tempDir,
  waitUntil,
} from "./support/store-faults.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (err) {
      console.error("cleanup failed:", err);
    }
  }
});

let configDir = "";

async function gatehouseOn(dbPath: string): Promise<GatehouseProcess> {
  configDir = tempDir("gatehouse-faults-config-");
  const dir = configDir;
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const gh = await startOnDb(dbPath, configDir);
  cleanups.push(() => (gh.proc.exitCode === null ? stopProcess(gh) : undefined));
  return gh;
}

const ok = (statuses: number[]) => statuses.filter((s) => s === 200).length;

describe("store faults never fail a request and lose no usage row", () => {
  test("a write lock held by another process for 7 s", async () => {
    const dir = tempDir("gatehouse-lock-");
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, "gatehouse.db");
    const gh = await gatehouseOn(db);
    const traffic = startTraffic(gh.dataUrl);

    // Another process takes the write lock and holds it; it says when it has it.
    const holder = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { Database } = require("bun:sqlite");
         const db = new Database(${JSON.stringify(db)});
         db.exec("PRAGMA busy_timeout = 10000");
         db.exec("BEGIN IMMEDIATE");
         console.log("locked");
         Bun.sleepSync(7000);
         db.exec("COMMIT");
         console.log("released");`,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    cleanups.push(() => holder.kill());
    const out = holder.stdout.getReader();
    const first = new TextDecoder().decode((await out.read()).value);
    expect(first).toContain("locked");
    const atLock = traffic.statuses.length;
    expect(await holder.exited).toBe(0);
    const during = traffic.statuses.length - atLock;
    const statuses = await traffic.stop();

    expect(during).toBeGreaterThan(0);
    expect(statuses.length).toBe(ok(statuses));
    await waitUntil("every usage row is in the file", () => countRows(db) === statuses.length);
    expect(await stopProcess(gh)).toBe(0);
    expect(countRows(db)).toBe(statuses.length);
  }, 60_000);

  test.skipIf(!mountsPermitted)(
    "a disk that fills up (tmpfs), then has room again",
    async () => {
      const fs = mountTmpfs("8m");
      cleanups.push(() => fs.unmount());
      const db = join(fs.dir, "gatehouse.db");
      const gh = await gatehouseOn(db);
      const traffic = startTraffic(gh.dataUrl);

      // Fill every byte that is left.
      const filler = join(fs.dir, "filler");
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) writeFileSync(filler, chunk, { flag: "a" });
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
      }
      await waitUntil("the store reports the disk full", async () => {
        const r = await readyz(gh);
        return r.status === 503 && r.detail.includes("the disk is full");
      });
      expect(await metricsText(gh)).toContain('gatehouse_store_fault{reason="full"} 1');
      const whileFull = traffic.statuses.length;
      await waitUntil("requests are served while it is full", () => traffic.statuses.length > whileFull + 50);

      rmSync(filler);
      await waitUntil("the store recovers", async () => (await readyz(gh)).status === 200);
      const statuses = await traffic.stop();
      expect(statuses.length).toBe(ok(statuses));
      await waitUntil("every usage row is in the file", () => countRows(db) === statuses.length);
      expect(await stopProcess(gh)).toBe(0);
      expect(countRows(db)).toBe(statuses.length);
      expect(logLines(gh, "database writes recovered")).toHaveLength(1);
    },
    60_000,
  );

  // The kernel refuses `mount -o remount,ro` while a file is open for writing (EBUSY), and a
  // filesystem that turns read-only by itself (ext4 errors=remount-ro) cannot be made writable
  // again without unmounting. An immutable file on ext4 gives SQLite the same error (a write
  // refused: SQLITE_IOERR_WRITE) and can be undone in place.
  test.skipIf(!ext4Permitted)(
    "a database file that turns read-only, then writable again; quota counters and last-used times too",
    async () => {
      const fs = mountExt4("32M");
      cleanups.push(() => fs.unmount());
      const db = join(fs.dir, "gatehouse.db");
      const files = [db, `${db}-wal`];
      const gh = await gatehouseOn(db);
      const traffic = startTraffic(gh.dataUrl);
      await waitUntil("rows are written", () => (countRows(db) ?? 0) > 0);
      const faultAt = Date.now();
      run("chattr", "+i", ...files);
      cleanups.push(() => run("chattr", "-i", ...files));

      // Usage rows, the quota counter and the key's last-used time all wait in memory.
      let detail = "";
      await waitUntil("the store reports the fault with what waits", async () => {
        const r = await readyz(gh);
        detail = r.detail;
        return r.status === 503 && /[1-9]\d* rows buffered/.test(r.detail) && /[2-9] quota/.test(r.detail);
      });
      expect(detail).toContain("Usage rows cannot be written: the disk refuses writes");
      const metrics = await metricsText(gh);
      expect(metrics).toContain("gatehouse_store_healthy 0");
      expect(metrics).toContain('gatehouse_store_fault{reason="io"} 1');
      expect(metrics).toMatch(/gatehouse_usage_rows_buffered [1-9]/);
      const create = await fetch(`${gh.adminUrl}/tenants`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "initech", plan: "metered" }),
      });
      expect(create.status).toBe(503);
      expect(create.headers.get("content-type")).toBe("application/problem+json");
      expect(((await create.json()) as { type: string }).type).toBe(
        "urn:gatehouse:problem:store-unavailable",
      );
      // A config change waits for the store: a reload writes on the event loop.
      writeFileSync(
        join(configDir, "gateway.yaml"),
        `${CONFIG}  initech: { plan: metered, keys: [{ id: initech-1, secret: initech-key-0001 }] }\n`,
      );
      await waitUntil("the reload is deferred", () =>
        gh.stderr().includes("config change seen while the database refuses writes"),
      );
      expect(gh.stderr()).not.toContain('"msg":"config reloaded"');

      run("chattr", "-i", ...files);
      await waitUntil("the store recovers", async () => (await readyz(gh)).status === 200);
      await waitUntil("the deferred reload is applied", () =>
        gh.stderr().includes('"msg":"config reloaded"'),
      );
      const late = await fetch(`${gh.dataUrl}/v1/items`, { headers: { "x-api-key": "initech-key-0001" } });
      expect(late.status).toBe(200);
      const statuses = await traffic.stop();
      expect(statuses.length).toBe(ok(statuses));
      // The traffic's requests and the one with the reloaded key.
      const total = statuses.length + 1;
      await waitUntil("every usage row is in the file", () => countRows(db) === total);
      // The quota counter and the last-used time written after recovery are the latest ones.
      await waitUntil(
        "the quota counter holds every request",
        () => query<{ used: number }>(db, "SELECT sum(used) AS used FROM quota_usage").used === total,
      );
      const lastUsed = query<{ at: number }>(
        db,
        "SELECT last_used_at AS at FROM api_keys WHERE id = 'acme-1'",
      );
      expect(lastUsed.at).toBeGreaterThan(faultAt);
      expect(await stopProcess(gh)).toBe(0);
      expect(countRows(db)).toBe(total);
      // One line when it began (it lasted less than a minute) and one when it ended.
      expect(
        logLines(gh, "database writes failing; traffic is served and writes wait in memory"),
      ).toHaveLength(1);
      expect(logLines(gh, "database writes recovered")).toHaveLength(1);
    },
    60_000,
  );

  test("a database file that is removed, directory and all, then can be put back", async () => {
    const base = tempDir("gatehouse-gone-");
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    const dir = join(base, "data");
    mkdirSync(dir);
    const db = join(dir, "gatehouse.db");
    const gh = await gatehouseOn(db);
    const traffic = startTraffic(gh.dataUrl);
    await waitUntil("rows are written", () => (countRows(db) ?? 0) > 0);

    rmSync(dir, { recursive: true });
    await waitUntil("the store reports the file gone", async () => {
      const r = await readyz(gh);
      return r.status === 503 && r.detail.includes("the database file was removed or replaced");
    });
    expect(await metricsText(gh)).toContain('gatehouse_store_fault{reason="gone"} 1');
    const refused = await fetch(`${gh.adminUrl}/tenants`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "initech", plan: "metered" }),
    });
    expect(refused.status).toBe(503);
    const whileGone = traffic.statuses.length;
    await waitUntil("requests are served while it is gone", () => traffic.statuses.length > whileGone + 50);

    mkdirSync(dir);
    await waitUntil("the file is put back", async () => (await readyz(gh)).status === 200);
    expect(existsSync(db)).toBe(true);
    // The main thread's connection followed: a control-API change lands in the new file.
    const created = await fetch(`${gh.adminUrl}/tenants`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "initech", plan: "metered" }),
    });
    expect(created.status).toBe(201);
    expect(query<{ n: number }>(db, "SELECT count(*) AS n FROM tenants WHERE id = 'initech'").n).toBe(1);
    const statuses = await traffic.stop();
    expect(statuses.length).toBe(ok(statuses));
    // Rows from before the removal (copied from the open connection) and after it (buffered).
    await waitUntil("every usage row is in the file", () => countRows(db) === statuses.length);
    // GET /usage reads the new file too.
    const report = (await (await fetch(`${gh.adminUrl}/usage?tenant=acme&groupBy=route`)).json()) as {
      total: { requests: number };
    };
    expect(report.total.requests).toBe(statuses.length);
    expect(await stopProcess(gh)).toBe(0);
    expect(countRows(db)).toBe(statuses.length);
  }, 60_000);
});
