import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startConfigWatch } from "../../src/config/watch.ts";

/** A watcher and timers driven by hand. */
function fakes() {
  let listener: ((event: string, filename: string | null) => void) | undefined;
  let watchedDir = "";
  let closed = false;
  const timers = new Map<number, () => void>();
  let next = 0;
  return {
    options: {
      debounceMs: 100,
      watch: (dir: string, l: (event: string, filename: string | null) => void) => {
        watchedDir = dir;
        listener = l;
        return {
          close: () => {
            closed = true;
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
    emit: (filename: string | null, event = "change") => listener?.(event, filename),
    fire: () => {
      const due = [...timers.values()];
      timers.clear();
      for (const fn of due) fn();
    },
    pending: () => timers.size,
    dir: () => watchedDir,
    closed: () => closed,
  };
}

describe("startConfigWatch", () => {
  test("watches the directory and reacts only to the config file's name", () => {
    const f = fakes();
    let calls = 0;
    startConfigWatch("/etc/gatehouse/gateway.yaml", () => calls++, f.options);
    expect(f.dir()).toBe("/etc/gatehouse");
    f.emit("other.yaml");
    f.emit("gateway.yaml.swp");
    f.emit(".gateway.yaml.tmp");
    expect(f.pending()).toBe(0);
    f.fire();
    expect(calls).toBe(0);
    f.emit("gateway.yaml", "rename");
    f.fire();
    expect(calls).toBe(1);
  });

  test("a burst of events makes one call", () => {
    const f = fakes();
    let calls = 0;
    startConfigWatch("conf/gateway.yaml", () => calls++, f.options);
    for (let i = 0; i < 5; i++) f.emit("gateway.yaml");
    expect(f.pending()).toBe(1);
    f.fire();
    expect(calls).toBe(1);
  });

  test("stopping closes the watcher and drops a pending call", () => {
    const f = fakes();
    let calls = 0;
    const stop = startConfigWatch("gateway.yaml", () => calls++, f.options);
    f.emit("gateway.yaml");
    stop();
    f.fire();
    f.emit("gateway.yaml");
    f.fire();
    expect(calls).toBe(0);
    expect(f.closed()).toBe(true);
  });

  describe("with the real file system", () => {
    let dir = "";
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    test("sees an editor-style save (write a temp file, rename it over the config)", async () => {
      dir = mkdtempSync(join(tmpdir(), "gatehouse-watch-"));
      const path = join(dir, "gateway.yaml");
      writeFileSync(path, "version: 1\n");
      const { promise, resolve } = Promise.withResolvers<void>();
      let calls = 0;
      const stop = startConfigWatch(
        path,
        () => {
          calls++;
          resolve();
        },
        { debounceMs: 10 },
      );
      try {
        writeFileSync(join(dir, "gateway.yaml.tmp"), "version: 1\n# edited\n");
        renameSync(join(dir, "gateway.yaml.tmp"), path);
        // A deadline, not a sleep: the test ends as soon as the change is seen.
        const deadline = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000).unref());
        expect(await Promise.race([promise.then(() => "seen" as const), deadline])).toBe("seen");
        expect(calls).toBe(1);
      } finally {
        stop();
      }
    });
  });
});
