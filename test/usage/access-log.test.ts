/**
 * The access log: the raw export's NDJSON line for every request, never a secret, never waiting on
 * its destination; a file that cannot be opened stops start-up with a located error.
 */
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../../src/app.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";
import { AccessLog, type AccessSink, accessLine } from "../../src/usage/access-log.ts";
import { RAW_COLUMNS } from "../../src/usage/export.ts";
import type { UsageRow } from "../../src/usage/row.ts";
import { startTestGateway } from "../support/gateway.ts";

const SECRET = "acme-secret-0001";
const WRONG = "wrong-secret-93b1";

const config = (access: string) => `version: 1
log: { access: "${access}" }
upstreams:
  echo: { mock: echo }
plans:
  basic: { rules: [{ allow: "GET /v1/**" }] }
routes:
  - { match: "* /v1/**", upstream: echo }
tenants:
  acme:
    plan: basic
    keys: [{ id: acme-key, secret: ${SECRET} }]
`;

describe("access log to a file", () => {
  test("served and refused requests: the export's fields exactly, and no key or query string", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-access-"));
    const file = join(dir, "access.log");
    const gw = startTestGateway(config(file), { testClockStart: Date.UTC(2027, 0, 1) });
    const ids: string[] = [];
    try {
      const send = async (path: string, headers: Record<string, string>, method = "GET") => {
        const res = await fetch(gw.dataUrl + path, { method, headers });
        await res.arrayBuffer();
        ids.push(res.headers.get("x-request-id")!);
        return res.status;
      };
      expect(await send(`/v1/items?api_key=${SECRET}&q=tea`, { authorization: `Bearer ${SECRET}` })).toBe(
        200,
      );
      expect(await send(`/v1/items?token=${WRONG}`, { "x-api-key": WRONG })).toBe(401);
      expect(await send("/v1/items", { "x-api-key": SECRET }, "DELETE")).toBe(403);
      const exported = await (
        await fetch(
          `${gw.adminUrl}/usage/export?format=ndjson&granularity=raw&from=2027-01-01T00:00:00Z&to=2027-01-02T00:00:00Z`,
        )
      ).text();
      await gw.close();
      const text = readFileSync(file, "utf8");
      const logged = text.trimEnd().split("\n");
      expect(logged).toHaveLength(3);
      for (const line of logged) expect(Object.keys(JSON.parse(line))).toEqual([...RAW_COLUMNS]);
      expect(logged.map((l) => JSON.parse(l).request_id)).toEqual(ids);
      // Each line is the line the raw export gives for the same request.
      expect(text).toBe(exported);
      const [served, unauthorized, forbidden] = logged.map((l) => JSON.parse(l));
      expect(served).toMatchObject({
        tenant: "acme",
        key_id: "acme-key",
        route: "* /v1/**",
        method: "GET",
        path: "/v1/items",
        status: 200,
        outcome: "ok",
        cost_units: 1,
        time: "2027-01-01T00:00:00.000Z",
      });
      expect(unauthorized).toMatchObject({
        tenant: null,
        key_id: null,
        status: 401,
        outcome: "rejected:unauthorized",
      });
      expect(forbidden).toMatchObject({ tenant: "acme", status: 403, outcome: "rejected:forbidden" });
      for (const secret of [SECRET, WRONG, "api_key", "token=", "q=tea"]) expect(text).not.toContain(secret);
    } finally {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a file that cannot be opened stops start-up with the located error", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-access-"));
    try {
      const configPath = join(dir, "gateway.yaml");
      writeFileSync(configPath, config(join(dir, "missing-dir", "access.log")));
      let error: unknown;
      try {
        startGateway({ configPath, db: ":memory:", listen: "127.0.0.1:0", admin: "127.0.0.1:0", env: {} });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(
        `${configPath}:2:16 log.access: cannot open the access log for appending (ENOENT)\n` +
          "  hint: create its directory and make it writable, or choose another path (or stderr, stdout, off)",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A destination that accepts `room` writes, then asks to wait until `drain()`. */
class SlowSink extends EventEmitter implements AccessSink {
  chunks: string[] = [];
  constructor(public room: number) {
    super();
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return --this.room > 0;
  }
  drain(room: number) {
    this.room = room;
    this.emit("drain");
  }
}

const row = (i: number): UsageRow => ({
  ts: Date.UTC(2027, 0, 1),
  requestId: `req-${String(i).padStart(4, "0")}`,
  tenantId: "acme",
  keyId: "acme-key",
  route: "* /v1/**",
  method: "GET",
  path: "/v1/items",
  status: 200,
  outcome: "ok",
  wouldRefuse: null,
  cost: 1,
  bytesIn: 0,
  bytesOut: 10,
  latencyMs: 3,
  upstreamMs: 1.25,
});

function accessLog(sink: AccessSink, bufferChars = 100_000) {
  const clock = new ManualClock();
  const scheduler = new ManualScheduler(() => clock.now());
  const logged: string[] = [];
  const log = new AccessLog({ sink, scheduler, log: (_l, msg) => logged.push(msg), bufferChars });
  const tick = () => {
    clock.advance(10);
    scheduler.runDue();
  };
  return { log, tick, logged };
}

describe("AccessLog", () => {
  test("lines are written together once per tick, never one write per request", () => {
    const sink = new SlowSink(100);
    const { log, tick } = accessLog(sink);
    for (let i = 0; i < 3; i++) log.record(row(i));
    expect(sink.chunks).toEqual([]);
    tick();
    expect(sink.chunks).toHaveLength(1);
    expect(sink.chunks[0]!.split("\n").filter(Boolean)).toHaveLength(3);
    expect(log.stats()).toEqual({ written: 3, dropped: 0 });
  });

  test("a slow destination: lines wait in memory up to the bound, the rest are dropped and counted", () => {
    const sink = new SlowSink(1);
    // Room for five lines.
    const { log, tick } = accessLog(sink, accessLine(row(0)).length * 5);
    log.record(row(0));
    tick(); // written; the destination now asks to wait
    expect(sink.chunks).toHaveLength(1);
    for (let i = 1; i <= 20; i++) log.record(row(i));
    tick();
    // Nothing is written while it waits, and recording never blocked or threw.
    expect(sink.chunks).toHaveLength(1);
    expect(log.stats()).toEqual({ written: 1, dropped: 15 });
    sink.drain(10);
    // The oldest lines were kept, in order; the newest were dropped.
    expect(
      sink.chunks.slice(1).map((c) =>
        c
          .trimEnd()
          .split("\n")
          .map((l) => JSON.parse(l).request_id),
      ),
    ).toEqual([["req-0001", "req-0002", "req-0003", "req-0004", "req-0005"]]);
    expect(log.stats()).toEqual({ written: 6, dropped: 15 });
  });

  test("a destination that fails is given up: one log line, further lines counted as dropped", () => {
    const sink = new SlowSink(100);
    sink.write = () => {
      throw Object.assign(new Error("broken pipe"), { code: "EPIPE" });
    };
    const { log, tick, logged } = accessLog(sink);
    log.record(row(1));
    tick();
    log.record(row(2));
    log.record(row(3));
    tick();
    expect(logged).toEqual(["the access log cannot be written; its lines are dropped from now on"]);
    expect(log.stats()).toEqual({ written: 0, dropped: 3 });
  });
});
