/** The log level: every line below it is dropped, wherever it comes from; a reload applies a change. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StartupError, startGateway } from "../../src/app.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { LevelFilter, type LogLevel } from "../../src/lib/log.ts";
import { progressLog } from "../../src/lib/progress.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

interface Line {
  level: LogLevel;
  msg: string;
  fields?: Record<string, unknown>;
}

const config = (log: string) => `version: 1
${log}
upstreams:
  down: { mock: close }
plans:
  basic: { rules: [{ allow: "GET /**" }] }
routes:
  - { match: "GET /**", upstream: down }
tenants:
  acme:
    plan: basic
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
`;

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** A gateway whose upstream always drops the connection: each request logs at debug and, once, at warn. */
function start(log: string, env: Record<string, string> = {}) {
  const lines: Line[] = [];
  gw = startTestGateway(config(log), {
    env,
    testClockStart: Date.UTC(2027, 0, 1),
    log: (level, msg, fields) => lines.push({ level, msg, ...(fields ? { fields } : {}) }),
  });
  const fail = async () => {
    const res = await fetch(`${gw!.dataUrl}/x`, { headers: { "x-api-key": "acme-secret-0001" } });
    expect(res.status).toBe(502);
  };
  const levels = () => lines.filter((l) => l.msg === "upstream request failed").map((l) => l.level);
  return { lines, fail, levels };
}

describe("log level", () => {
  test("LevelFilter passes its level and the more severe ones", () => {
    const seen: string[] = [];
    const f = new LevelFilter((level) => seen.push(level));
    for (const l of ["error", "warn", "info", "debug"] as const) f.log(l, "x");
    f.level = "warn";
    for (const l of ["error", "warn", "info", "debug"] as const) f.log(l, "x");
    expect(seen).toEqual(["error", "warn", "info", "error", "warn"]);
  });

  test("info by default: no debug lines", async () => {
    const g = start("");
    await g.fail();
    expect(g.levels()).toEqual(["warn"]);
  });

  test("log.level: debug adds a line per failure; error drops the warning", async () => {
    const debug = start("log: { level: debug }");
    await debug.fail();
    await debug.fail();
    expect(debug.levels()).toEqual(["debug", "warn", "debug"]);
    await gw!.close();
    const quiet = start("log: { level: error }");
    await quiet.fail();
    expect(quiet.levels()).toEqual([]);
  });

  test("GATEHOUSE_LOG_LEVEL overrides log.level, also after a reload", async () => {
    const g = start("log: { level: error }", { GATEHOUSE_LOG_LEVEL: "debug" });
    await g.fail();
    expect(g.levels()).toEqual(["debug", "warn"]);
    writeFileSync(gw!.configPath, config("log: { level: warn }"));
    expect((await fetch(`${gw!.adminUrl}/config/reload`, { method: "POST" })).status).toBe(200);
    await g.fail();
    expect(g.levels()).toEqual(["debug", "warn", "debug"]);
  });

  test("a reload applies a changed log.level; a changed log.access is reported", async () => {
    const g = start("log: { level: error }");
    await g.fail();
    writeFileSync(gw!.configPath, config("log: { level: debug, access: stderr }"));
    expect((await fetch(`${gw!.adminUrl}/config/reload`, { method: "POST" })).status).toBe(200);
    await g.fail();
    expect(g.levels()).toEqual(["debug"]);
    expect(g.lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
      "log.access changed; the access log keeps its destination until the next start",
    ]);
  });

  test("an unknown GATEHOUSE_LOG_LEVEL stops start-up, naming the levels", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-level-"));
    try {
      const configPath = join(dir, "gateway.yaml");
      writeFileSync(configPath, config(""));
      const run = () =>
        startGateway({
          configPath,
          db: ":memory:",
          listen: "127.0.0.1:0",
          admin: "127.0.0.1:0",
          env: { GATEHOUSE_LOG_LEVEL: "verbose" },
        });
      expect(run).toThrow(StartupError);
      expect(run).toThrow(
        'GATEHOUSE_LOG_LEVEL="verbose" is not a log level; use one of error, warn, info, debug',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("start-up progress", () => {
  test("a line after each second of work, none for quick work", () => {
    const clock = new ManualClock(0);
    const lines: Line[] = [];
    const report = progressLog(clock, (level, msg, fields) =>
      lines.push({ level, msg, ...(fields ? { fields } : {}) }),
    );
    report("config loaded");
    clock.advance(999);
    report("syncing keys", 10, 100);
    clock.advance(1);
    report("syncing keys", 20, 100);
    clock.advance(500);
    report("syncing keys", 30, 100);
    clock.advance(600);
    report("building the snapshot");
    expect(lines).toEqual([
      {
        level: "info",
        msg: "starting",
        fields: { step: "syncing keys", done: 20, total: 100, elapsedMs: 1000 },
      },
      { level: "info", msg: "starting", fields: { step: "building the snapshot", elapsedMs: 2100 } },
    ]);
  });

  test("a slow cold sync reports how many keys are done", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-progress-"));
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `{ id: k${i}, secret: acme-secret-${1000 + i} }`);
      const configPath = join(dir, "gateway.yaml");
      writeFileSync(configPath, config("").replace(/keys: \[.*\]/, `keys: [${keys.join(", ")}]`));
      // Every read of this clock is 100 ms later: each key's row looks like a tenth of a second of work.
      let t = Date.UTC(2027, 0, 1);
      const lines: Line[] = [];
      const g = startGateway({
        configPath,
        db: ":memory:",
        listen: "127.0.0.1:0",
        admin: "127.0.0.1:0",
        env: {},
        clock: { now: () => (t += 100) },
        watchConfig: false,
        log: (level, msg, fields) => lines.push({ level, msg, ...(fields ? { fields } : {}) }),
      });
      await g.stop();
      const keySteps = lines.filter((l) => l.msg === "starting" && l.fields?.step === "syncing keys");
      expect(keySteps.length).toBeGreaterThan(2);
      for (const l of keySteps) expect(l.fields).toMatchObject({ total: 40 });
      const done = keySteps.map((l) => l.fields!.done as number);
      expect(done).toEqual([...done].sort((a, b) => a - b));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
