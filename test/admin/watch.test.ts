import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { watch as fsWatch, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startConfigWatch } from "../../src/config/watch.ts";

/** A watcher and timers driven by hand; `missing` makes watching the file fail, as for a deleted one. */
function fakes() {
  let listener: ((event: string) => void) | undefined;
  const watched: string[] = [];
  let closed = 0;
  let missing = false;
  const timers = new Map<number, () => void>();
  let next = 0;
  return {
    options: {
      debounceMs: 100,
      watch: (file: string, l: (event: string) => void) => {
        if (missing) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
        watched.push(file);
        listener = l;
        return {
          close: () => {
            closed++;
          },
        };
      },
      setTimer: (fn: () => void) => {
        timers.set(++next, fn);
        return next;
      },
      clearTimer: (h: unknown) => {
        timers.delete(h as number);
      },
    },
    emit: (event = "change") => listener?.(event),
    fire: () => {
      const due = [...timers.values()];
      timers.clear();
      for (const fn of due) fn();
    },
    setMissing: (m: boolean) => {
      missing = m;
    },
    pending: () => timers.size,
    watched: () => watched,
    closed: () => closed,
  };
}

describe("startConfigWatch", () => {
  test("watches the config file itself", () => {
    const f = fakes();
    let calls = 0;
    startConfigWatch("/etc/gatehouse/gateway.yaml", () => calls++, f.options);
    expect(f.watched()).toEqual(["/etc/gatehouse/gateway.yaml"]);
    f.emit();
    f.fire();
    expect(calls).toBe(1);
  });

  test("a burst of events makes one call", () => {
    const f = fakes();
    let calls = 0;
    startConfigWatch("conf/gateway.yaml", () => calls++, f.options);
    for (let i = 0; i < 5; i++) f.emit();
    expect(f.pending()).toBe(1);
    f.fire();
    expect(calls).toBe(1);
  });

  test("a replaced file is a change, and the watch moves to the new one", () => {
    const f = fakes();
    let calls = 0;
    startConfigWatch("/c/gateway.yaml", () => calls++, f.options);
    f.emit("rename");
    expect(f.closed()).toBe(1);
    expect(f.watched()).toEqual(["/c/gateway.yaml", "/c/gateway.yaml"]);
    f.fire();
    expect(calls).toBe(1);
  });

  test("a deleted file is looked for every second, and its return is a change", () => {
    const f = fakes();
    let calls = 0;
    startConfigWatch("/c/gateway.yaml", () => calls++, f.options);
    f.setMissing(true);
    f.emit("rename");
    f.fire(); // the debounced change of the deletion, and a look that finds nothing
    expect(calls).toBe(1);
    expect(f.pending()).toBe(1);
    f.setMissing(false);
    f.fire();
    expect(f.watched()).toHaveLength(2);
    f.fire();
    expect(calls).toBe(2);
    expect(f.pending()).toBe(0);
  });

  test("stopping closes the watcher and drops a pending call", () => {
    const f = fakes();
    let calls = 0;
    const stop = startConfigWatch("gateway.yaml", () => calls++, f.options);
    f.emit();
    stop();
    f.fire();
    f.emit();
    f.fire();
    expect(calls).toBe(0);
    expect(f.closed()).toBe(1);
  });

  describe("with the real file system", () => {
    let dir = "";
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** Resolves at the next change, or "timeout" after 5 s: a deadline, not a sleep. */
    const watching = (path: string) => {
      let calls = 0;
      let wakeUps = 0;
      let seen: () => void = () => {};
      const stop = startConfigWatch(
        path,
        () => {
          calls++;
          seen();
        },
        {
          debounceMs: 10,
          recheckMs: 20,
          // The real watch, counting every event it delivers.
          watch: (target, listener) =>
            fsWatch(target, { persistent: false }, (...args: [string, string | null]) => {
              wakeUps++;
              (listener as (...a: [string, string | null]) => void)(...args);
            }),
        },
      );
      const next = () =>
        new Promise<"seen" | "timeout">((resolve) => {
          seen = () => resolve("seen");
          setTimeout(() => resolve("timeout"), 5000).unref();
        });
      return { stop, next, calls: () => calls, wakeUps: () => wakeUps };
    };

    test("sees an editor-style save (a temp file renamed over the config), then the next edit", async () => {
      dir = mkdtempSync(join(tmpdir(), "gatehouse-watch-"));
      const path = join(dir, "gateway.yaml");
      writeFileSync(path, "version: 1\n");
      const w = watching(path);
      try {
        let next = w.next();
        writeFileSync(join(dir, "gateway.yaml.tmp"), "version: 1\n# edited\n");
        renameSync(join(dir, "gateway.yaml.tmp"), path);
        expect(await next).toBe("seen");
        next = w.next();
        writeFileSync(path, "version: 1\n# edited again, in place\n");
        expect(await next).toBe("seen");
        next = w.next();
        unlinkSync(path);
        writeFileSync(path, "version: 1\n# deleted and written anew\n");
        expect(await next).toBe("seen");
      } finally {
        w.stop();
      }
    });

    test("is not woken by a database writing beside the config", async () => {
      dir = mkdtempSync(join(tmpdir(), "gatehouse-watch-"));
      const path = join(dir, "gateway.yaml");
      writeFileSync(path, "version: 1\n");
      const w = watching(path);
      try {
        const db = new Database(join(dir, "gatehouse.db"));
        db.exec("PRAGMA journal_mode = WAL");
        db.exec("CREATE TABLE t (x)");
        for (let i = 0; i < 50; i++) db.run("INSERT INTO t VALUES (?)", [i]);
        db.close();
        // The config's own change comes after the database's writes: when it is seen, any wake-up
        // the database caused would have been counted before it.
        const next = w.next();
        writeFileSync(path, "version: 1\n# edited\n");
        expect(await next).toBe("seen");
        expect(w.calls()).toBe(1);
        expect(w.wakeUps()).toBeLessThanOrEqual(2);
      } finally {
        w.stop();
      }
    });
  });
});
