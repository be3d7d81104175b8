/**
 * When the store or the sockets misbehave, against a real gatehouse process.
 *
 * Store faults, on a database file while traffic flows: a write lock held by another process, a
 * disk that fills up, a database file that turns read-only, and one that is removed. Every request
 * must be answered normally, and every usage row must be in the file once the fault has passed.
 * Faults that need mounts skip with the reason when not permitted.
 *
 * Slow clients. Bun closes a connection whose request head has not completed after about 10-14 s,
 * however steadily its header lines arrive (measured: one line a second, or ten, is closed at about
 * 12 s, whatever idleTimeout says), on both listeners. 400 slowloris clients trickle request heads at
 * the data listener and one at the admin listener; a normal client's requests must all succeed while
 * they are connected, and every one of them must be closed by the server while it is still
 * trickling. No timing is asserted but the generous 40 s a trickler keeps going before giving up.
 *
 * The tests run concurrently: each spends most of its time waiting for a real process.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startTestGateway } from "./support/gateway.ts";
import type { GatehouseProcess } from "./support/process.ts";
import {
  CONFIG,
  countRows,
  ext4Permitted,
  KEY,
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

/** What one test started, stopped and removed when it ends, even when it fails. */
class Scope {
  private readonly cleanups: (() => unknown)[] = [];
  configDir = "";

  defer(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  async gatehouse(dbPath: string): Promise<GatehouseProcess> {
    const dir = tempDir("gatehouse-faults-config-");
    this.configDir = dir;
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    const gh = await startOnDb(dbPath, dir);
    this.defer(() => (gh.proc.exitCode === null ? stopProcess(gh) : undefined));
    return gh;
  }

  async close(): Promise<void> {
    for (const c of this.cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        console.error("cleanup failed:", err);
      }
    }
  }
}

/** The tests run concurrently (each waits on a real process most of the time), each in its own scope. */
const inScope = (body: (s: Scope) => Promise<void>) => async () => {
  const s = new Scope();
  try {
    await body(s);
  } finally {
    await s.close();
  }
};

const ok = (statuses: number[]) => statuses.filter((s) => s === 200).length;

describe("store faults never fail a request and lose no usage row", () => {
  test.concurrent(
    "a write lock held by another process for 7 s",
    inScope(async (s) => {
      const dir = tempDir("gatehouse-lock-");
      s.defer(() => rmSync(dir, { recursive: true, force: true }));
      const db = join(dir, "gatehouse.db");
      const gh = await s.gatehouse(db);
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
      s.defer(() => holder.kill());
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
    }),
    60_000,
  );

  test.concurrent.skipIf(!mountsPermitted)(
    "a disk that fills up (tmpfs), then has room again",
    inScope(async (s) => {
      const fs = mountTmpfs("8m");
      s.defer(() => fs.unmount());
      const db = join(fs.dir, "gatehouse.db");
      const gh = await s.gatehouse(db);
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
        return r.status === 200 && r.state === "degraded" && r.detail.includes("the disk is full");
      });
      expect(await metricsText(gh)).toContain('gatehouse_store_fault{reason="full"} 1');
      const whileFull = traffic.statuses.length;
      await waitUntil("requests are served while it is full", () => traffic.statuses.length > whileFull + 50);

      rmSync(filler);
      await waitUntil("the store recovers", async () => (await readyz(gh)).state === "ready");
      const statuses = await traffic.stop();
      expect(statuses.length).toBe(ok(statuses));
      await waitUntil("every usage row is in the file", () => countRows(db) === statuses.length);
      expect(await stopProcess(gh)).toBe(0);
      expect(countRows(db)).toBe(statuses.length);
      expect(logLines(gh, "database writes recovered")).toHaveLength(1);
    }),
    60_000,
  );

  // The kernel refuses `mount -o remount,ro` while a file is open for writing (EBUSY), and a
  // filesystem that turns read-only by itself (ext4 errors=remount-ro) cannot be made writable
  // again without unmounting. An immutable file on ext4 gives SQLite the same error (a write
  // refused: SQLITE_IOERR_WRITE) and can be undone in place.
  test.concurrent.skipIf(!ext4Permitted)(
    "a database file that turns read-only, then writable again; quota counters and last-used times too",
    inScope(async (s) => {
      const fs = mountExt4("32M");
      s.defer(() => fs.unmount());
      const db = join(fs.dir, "gatehouse.db");
      const files = [db, `${db}-wal`];
      const gh = await s.gatehouse(db);
      const traffic = startTraffic(gh.dataUrl);
      await waitUntil("rows are written", () => (countRows(db) ?? 0) > 0);
      const faultAt = Date.now();
      run("chattr", "+i", ...files);
      s.defer(() => run("chattr", "-i", ...files));

      // Usage rows, the quota counter and the key's last-used time all wait in memory.
      let detail = "";
      await waitUntil("the store reports the fault with what waits", async () => {
        const r = await readyz(gh);
        detail = r.detail;
        return (
          r.status === 200 &&
          r.state === "degraded" &&
          /[1-9]\d* rows buffered/.test(r.detail) &&
          /[2-9] quota/.test(r.detail)
        );
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
        join(s.configDir, "gateway.yaml"),
        `${CONFIG}  initech: { plan: metered, keys: [{ id: initech-1, secret: initech-key-0001 }] }\n`,
      );
      await waitUntil("the reload is deferred", () =>
        gh.stderr().includes("config change seen while the database refuses writes"),
      );
      expect(gh.stderr()).not.toContain('"msg":"config reloaded"');

      run("chattr", "-i", ...files);
      await waitUntil("the store recovers", async () => (await readyz(gh)).state === "ready");
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
    }),
    60_000,
  );

  test.concurrent(
    "a database file that is removed, directory and all, then can be put back",
    inScope(async (s) => {
      const base = tempDir("gatehouse-gone-");
      s.defer(() => rmSync(base, { recursive: true, force: true }));
      const dir = join(base, "data");
      mkdirSync(dir);
      const db = join(dir, "gatehouse.db");
      const gh = await s.gatehouse(db);
      const traffic = startTraffic(gh.dataUrl);
      await waitUntil("rows are written", () => (countRows(db) ?? 0) > 0);

      rmSync(dir, { recursive: true });
      await waitUntil("the store reports the file gone", async () => {
        const r = await readyz(gh);
        return (
          r.status === 200 &&
          r.state === "degraded" &&
          r.detail.includes("the database file was removed or replaced")
        );
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
      await waitUntil("the file is put back", async () => (await readyz(gh)).state === "ready");
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
    }),
    60_000,
  );
});

const SLOW_CLIENTS = 400;
const GIVE_UP_MS = 40_000;
const LINE_EVERY_MS = 500;

interface Trickler {
  socket: Socket;
  /** Set when the server closed the connection. */
  closed: boolean;
}

function trickle(url: string): Trickler {
  const { hostname, port } = new URL(url);
  const t: Trickler = { socket: connect(Number(port), hostname), closed: false };
  t.socket.on("close", () => {
    t.closed = true;
  });
  t.socket.on("error", () => {});
  t.socket.write(`GET /v1/slow HTTP/1.1\r\nHost: ${hostname}\r\n`);
  return t;
}

describe("slow clients", () => {
  test.concurrent("400 slowloris clients neither block a normal client nor stay connected (data and admin listeners)", async () => {
    const dir = tempDir("gatehouse-slow-");
    const gh = await startOnDb(":memory:", dir);
    const tricklers: Trickler[] = [];
    let timer: ReturnType<typeof setInterval> | undefined;
    try {
      for (let i = 0; i < SLOW_CLIENTS; i++) tricklers.push(trickle(gh.dataUrl));
      const admin = trickle(gh.adminUrl);
      tricklers.push(admin);
      const started = Date.now();
      let line = 0;
      // Header lines keep coming, never the blank line that ends the head.
      timer = setInterval(() => {
        line++;
        for (const t of tricklers) if (!t.closed) t.socket.write(`X-Slow-${line}: ${"x".repeat(20)}\r\n`);
      }, LINE_EVERY_MS);

      // While they are all connected, a normal client is served on both listeners.
      const statuses: number[] = [];
      for (let round = 0; round < 10; round++) {
        const batch = await Promise.all([
          ...Array.from({ length: 10 }, () =>
            fetch(`${gh.dataUrl}/v1/items`, { headers: { "x-api-key": KEY } }).then(async (r) => {
              await r.arrayBuffer();
              return r.status;
            }),
          ),
          fetch(`${gh.adminUrl}/healthz`).then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          }),
        ]);
        statuses.push(...batch);
      }
      expect(statuses).toEqual(Array(110).fill(200));
      expect(tricklers.filter((t) => t.closed)).toHaveLength(0);

      // Then the server closes every one of them, each while it is still trickling.
      while (tricklers.some((t) => !t.closed) && Date.now() - started < GIVE_UP_MS) await Bun.sleep(200);
      expect(tricklers.filter((t) => !t.closed)).toHaveLength(0);
      expect(admin.closed).toBe(true);
    } finally {
      clearInterval(timer);
      for (const t of tricklers) t.socket.destroy();
      expect(await stopProcess(gh)).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  // Bun bounds a slow request body by idleTimeout (measured: a body trickling one byte a second is
  // closed at about idleTimeout + 2 s), and not at all when it is 0, which validation refuses.
  test.concurrent("a request body that trickles in forever is closed after about idleTimeout", async () => {
    const gw = startTestGateway(
      "version: 1\nserver: { idleTimeout: 1s }\nupstreams: { echo: { mock: echo } }\n" +
        'plans: { p: { rules: [{ allow: "* /**" }] } }\nroutes: [{ match: "* /**", upstream: echo }]\n' +
        `tenants: { acme: { plan: p, keys: [{ id: k, secret: ${KEY} }] } }\n`,
    );
    const { hostname, port } = new URL(gw.dataUrl);
    const socket = connect(Number(port), hostname);
    let closed = false;
    socket.on("close", () => {
      closed = true;
    });
    socket.on("error", () => {});
    socket.write(
      `POST /v1/upload HTTP/1.1\r\nHost: ${hostname}\r\nX-API-Key: ${KEY}\r\nContent-Length: 100000\r\n\r\n`,
    );
    const started = Date.now();
    try {
      while (!closed && Date.now() - started < GIVE_UP_MS) {
        socket.write("x");
        await Bun.sleep(200);
      }
      expect(closed).toBe(true);
    } finally {
      socket.destroy();
      await gw.close();
    }
  }, 60_000);
});
