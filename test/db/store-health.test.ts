import { describe, expect, test } from "bun:test";
import {
  classifyStoreError,
  StoreGoneError,
  StoreHealth,
  type StoreStatus,
} from "../../src/db/store-health.ts";
import { ManualClock } from "../../src/lib/clock.ts";

const sqliteError = (code: string) => Object.assign(new Error(`${code} happened`), { code });

function health() {
  const clock = new ManualClock(1_000_000);
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const changes: StoreStatus[] = [];
  const counts = { buffered: 0, dropped: 0, retries: 0, waiting: 0 };
  const h = new StoreHealth({
    clock,
    log: (level, msg, fields) => lines.push({ level, msg, ...(fields ? { fields } : {}) }),
    counts: () => ({ ...counts }),
    onChange: (s) => changes.push(s),
  });
  return { clock, lines, changes, counts, h };
}

describe("StoreHealth", () => {
  test("one log line when a fault begins, at most one a minute while it lasts, one when it ends", () => {
    const { clock, lines, counts, h } = health();
    counts.buffered = 10;
    h.failed("usage rows", sqliteError("SQLITE_FULL"));
    for (let i = 0; i < 59; i++) {
      clock.advance(1_000);
      h.failed("usage rows", sqliteError("SQLITE_FULL"));
      h.failed("quota counters", sqliteError("SQLITE_FULL"));
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: "error",
      msg: "database writes failing; traffic is served and writes wait in memory",
      fields: { fault: "full", error: "SQLITE_FULL happened", buffered: 10 },
    });
    clock.advance(1_000);
    h.failed("usage rows", sqliteError("SQLITE_FULL"));
    expect(lines).toHaveLength(2);
    expect(lines[1]?.fields).toMatchObject({ failedWrites: 119, downMs: 60_000 });
    // Healthy only once every writer has succeeded again.
    h.succeeded("usage rows");
    expect(h.healthy).toBe(false);
    h.succeeded("quota counters");
    expect(h.healthy).toBe(true);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({
      level: "warn",
      msg: "database writes recovered",
      fields: { downMs: 60_000 },
    });
    // A success while healthy says nothing.
    h.succeeded("usage rows");
    expect(lines).toHaveLength(3);
  });

  test("the status names the latest fault; changes are handed on, repeats are not", () => {
    const { changes, counts, h } = health();
    h.failed("usage rows", sqliteError("SQLITE_BUSY"));
    h.failed("usage rows", sqliteError("SQLITE_BUSY"));
    counts.buffered = 7;
    h.failed("quota counters", sqliteError("SQLITE_IOERR_WRITE"));
    expect(changes.map((s) => s.fault)).toEqual(["locked", "io"]);
    expect(h.status()).toMatchObject({ healthy: false, fault: "io", buffered: 7, since: 1_000_000 });
    h.succeeded("quota counters");
    expect(h.status()).toMatchObject({ healthy: false, fault: "locked" });
    h.succeeded("usage rows");
    expect(changes.at(-1)).toMatchObject({ healthy: true, fault: null, error: null, since: null });
  });

  test("faults are a closed set", () => {
    expect(classifyStoreError(sqliteError("SQLITE_BUSY_SNAPSHOT"))).toBe("locked");
    expect(classifyStoreError(sqliteError("SQLITE_LOCKED"))).toBe("locked");
    expect(classifyStoreError(sqliteError("SQLITE_FULL"))).toBe("full");
    expect(classifyStoreError(sqliteError("SQLITE_READONLY_DBMOVED"))).toBe("readonly");
    expect(classifyStoreError(sqliteError("SQLITE_IOERR_FSYNC"))).toBe("io");
    expect(classifyStoreError(sqliteError("SQLITE_CANTOPEN"))).toBe("io");
    expect(classifyStoreError(new StoreGoneError("gone"))).toBe("gone");
    expect(classifyStoreError(sqliteError("SQLITE_CORRUPT"))).toBe("other");
    expect(classifyStoreError("weird")).toBe("other");
  });
});
