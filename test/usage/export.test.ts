import { beforeAll, describe, expect, test } from "bun:test";
import { openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { csvField } from "../../src/usage/format.ts";
import { UsageQueryError } from "../../src/usage/query.ts";
import { createUsageService, type UsageService } from "../../src/usage/service.ts";
import { HOUR, row, store, T0 } from "./helpers.ts";

let usage: UsageService;
beforeAll(() => {
  const db = openDb(":memory:");
  store(db, [
    row({
      ts: T0 + 1000,
      requestId: "r1",
      keyId: "acme-a",
      route: "GET,HEAD /v1/x",
      path: '/v1/say "hi"',
      bytesOut: 5,
      latencyMs: 12,
      upstreamMs: 3.5,
    }),
    row({
      ts: T0 + 2000,
      requestId: "r2",
      tenantId: null,
      keyId: null,
      route: null,
      path: "/v1/line\r\nbreak",
      status: 401,
      outcome: "rejected:unauthorized",
      cost: 0,
      bytesOut: 0,
      latencyMs: 0,
      upstreamMs: null,
    }),
    row({
      ts: T0 + HOUR + 1000,
      requestId: "r3",
      tenantId: "globex",
      keyId: "globex-a",
      method: "POST",
      status: 201,
      cost: 2,
      bytesIn: 100,
      bytesOut: 0,
      latencyMs: 7,
      upstreamMs: 5,
      wouldRefuse: "forbidden,rate_limited",
    }),
  ]);
  usage = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0) });
});

const text = (s: ReadableStream<Uint8Array>) => new Response(s).text();

describe("CSV", () => {
  test("fields are quoted only when needed, quotes doubled (RFC 4180)", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(csvField("cr\r")).toBe('"cr\r"');
    expect(csvField(null)).toBe("");
    expect(csvField(0)).toBe("0");
  });

  test("raw rows: header, CRLF line ends, escaping, empty fields for nulls", async () => {
    const body = await text(
      usage.exportUsage({ format: "csv", granularity: "raw", from: T0, to: T0 + 2 * HOUR }),
    );
    expect(body).toBe(
      "time,request_id,tenant,key_id,route,method,path,status,outcome,cost_units,bytes_in,bytes_out,latency_ms,upstream_ms,would_refuse\r\n" +
        '2026-01-01T00:00:01.000Z,r1,acme,acme-a,"GET,HEAD /v1/x",GET,"/v1/say ""hi""",200,ok,1,0,5,12,3.5,\r\n' +
        '2026-01-01T00:00:02.000Z,r2,,,,GET,"/v1/line\r\nbreak",401,rejected:unauthorized,0,0,0,0,,\r\n' +
        '2026-01-01T01:00:01.000Z,r3,globex,globex-a,* /v1/**,POST,/v1/items,201,ok,2,100,0,7,5,"forbidden,rate_limited"\r\n',
    );
  });

  test("an empty range still has its header", async () => {
    const body = await text(
      usage.exportUsage({ format: "csv", granularity: "raw", from: T0 + 5000, to: T0 + 6000 }),
    );
    expect(body).toBe(
      "time,request_id,tenant,key_id,route,method,path,status,outcome,cost_units,bytes_in,bytes_out,latency_ms,upstream_ms,would_refuse\r\n",
    );
  });

  test("hourly totals per tenant, unauthenticated requests under an empty tenant", async () => {
    const body = await text(
      usage.exportUsage({ format: "csv", granularity: "hour", from: T0, to: T0 + 2 * HOUR }),
    );
    expect(body).toBe(
      "period_start,period_end,tenant,requests,errors,cost_units,bytes_in,bytes_out\r\n" +
        "2026-01-01T00:00:00.000Z,2026-01-01T01:00:00.000Z,,1,1,0,0,0\r\n" +
        "2026-01-01T00:00:00.000Z,2026-01-01T01:00:00.000Z,acme,1,0,1,0,5\r\n" +
        "2026-01-01T01:00:00.000Z,2026-01-01T02:00:00.000Z,globex,1,0,2,100,0\r\n",
    );
  });
});

describe("NDJSON", () => {
  test("raw rows of one tenant, one object per line, nulls as null", async () => {
    const body = await text(
      usage.exportUsage({
        format: "ndjson",
        granularity: "raw",
        tenant: "acme",
        from: T0,
        to: T0 + 2 * HOUR,
      }),
    );
    expect(body).toBe(
      `${JSON.stringify({
        time: "2026-01-01T00:00:01.000Z",
        request_id: "r1",
        tenant: "acme",
        key_id: "acme-a",
        route: "GET,HEAD /v1/x",
        method: "GET",
        path: '/v1/say "hi"',
        status: 200,
        outcome: "ok",
        cost_units: 1,
        bytes_in: 0,
        bytes_out: 5,
        latency_ms: 12,
        upstream_ms: 3.5,
        would_refuse: null,
      })}\n`,
    );
  });

  test("monthly totals clip the period to the requested range", async () => {
    const body = await text(
      usage.exportUsage({ format: "ndjson", granularity: "month", from: T0 + 1500, to: T0 + 2 * HOUR }),
    );
    expect(
      body
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    ).toEqual([
      {
        period_start: "2026-01-01T00:00:01.500Z",
        period_end: "2026-01-01T02:00:00.000Z",
        tenant: null,
        requests: 1,
        errors: 1,
        cost_units: 0,
        bytes_in: 0,
        bytes_out: 0,
      },
      {
        period_start: "2026-01-01T00:00:01.500Z",
        period_end: "2026-01-01T02:00:00.000Z",
        tenant: "globex",
        requests: 1,
        errors: 0,
        cost_units: 2,
        bytes_in: 100,
        bytes_out: 0,
      },
    ]);
  });
});

describe("streaming", () => {
  test("pages of raw rows join up exactly, also across rows sharing a timestamp", async () => {
    const db = openDb(":memory:");
    // 2500 rows, 1500 of them in the same millisecond: the keyset must not skip or repeat any.
    const rows = Array.from({ length: 2500 }, (_, i) =>
      row({ ts: T0 + (i < 1500 ? 0 : i), requestId: `id-${String(i).padStart(4, "0")}` }),
    );
    store(db, rows);
    const svc = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0) });
    const stream = svc.exportUsage({ format: "csv", granularity: "raw", from: T0, to: T0 + 10_000 });
    const reader = stream.getReader();
    let chunks = 0;
    let body = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks++;
      body += new TextDecoder().decode(value);
    }
    const ids = body
      .trim()
      .split("\r\n")
      .slice(1)
      .map((l) => l.split(",")[1]);
    expect(ids).toEqual(rows.map((r) => r.requestId));
    expect(chunks).toBeGreaterThanOrEqual(3);
  });

  test("an impossible range is refused before any byte is produced", () => {
    expect(() => usage.exportUsage({ format: "csv", granularity: "raw", from: T0, to: T0 - 1 })).toThrow(
      UsageQueryError,
    );
  });
});
