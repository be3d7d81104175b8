import { beforeAll, describe, expect, test } from "bun:test";
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import { usagePlugin } from "../../src/admin/usage/plugin.ts";
import { openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { parseInstant } from "../../src/lib/instant.ts";
import { createUsageService } from "../../src/usage/service.ts";
import { HOUR, row, store, T0 } from "./helpers.ts";

let app: { handle(req: Request): Promise<Response> };
beforeAll(() => {
  const db = openDb(":memory:");
  store(db, [
    row({ ts: T0 + 1000, requestId: "a1", route: "GET,HEAD /v1/x" }),
    row({ ts: T0 + 2000, requestId: "a2", status: 404, outcome: "rejected:not_found", route: null, cost: 0 }),
    row({ ts: T0 + HOUR, requestId: "g1", tenantId: "globex", keyId: "globex-a" }),
  ]);
  // "now" is two hours in, so the default range (the last 24 hours) covers every row.
  const usage = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0 + 2 * HOUR) });
  app = new Elysia().use(usagePlugin({ usage }));
});

const get = (path: string) => app.handle(new Request(`http://localhost${path}`));

async function problem(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["detail", "request_id", "status", "title", "type"]);
  expect(body.status).toBe(status);
  expect(body.request_id).toBe(res.headers.get("x-request-id"));
  return body as { type: string; title: string; status: number; detail: string };
}

describe("GET /usage", () => {
  test("a report with defaults: the last 24 hours, grouped by hour", async () => {
    const res = await get("/usage");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      tenant: null,
      from: "2025-12-31T02:00:00.000Z",
      // The end is exclusive: just after now, so that a request answered this millisecond counts.
      to: "2026-01-01T02:00:00.001Z",
      groupBy: "hour",
      total: { requests: 3, errors: 1, costUnits: 2 },
    });
    expect((body.groups as { group: string; requests: number }[]).map((g) => [g.group, g.requests])).toEqual([
      ["2026-01-01T00:00:00.000Z", 2],
      ["2026-01-01T01:00:00.000Z", 1],
    ]);
  });

  test("tenant, RFC 3339 and epoch-ms bounds, and groupBy", async () => {
    const res = await get(
      `/usage?tenant=acme&from=2026-01-01T01:00:00%2B01:00&to=${T0 + HOUR}&groupBy=route`,
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { from: string; groups: { group: string | null; requests: number }[] };
    expect(body.from).toBe("2026-01-01T00:00:00.000Z");
    expect(body.groups.map((g) => [g.group, g.requests])).toEqual([
      ["GET,HEAD /v1/x", 1],
      [null, 1],
    ]);
  });

  const bad: [string, string, RegExp][] = [
    [
      "an unknown groupBy",
      "/usage?groupBy=week",
      /^The query parameter groupBy must be one of route, key, status, minute, hour, day, month\.$/,
    ],
    ["a repeated parameter", "/usage?tenant=acme&tenant=globex", /tenant is given more than once/],
    ["an unknown parameter", "/usage?tenat=acme", /Unknown query parameter "tenat"/],
    ["a malformed from", "/usage?from=yesterday", /from must be an RFC 3339 date-time/],
    ["an impossible date", "/usage?from=2026-02-30T00:00:00Z", /does not exist/],
    ["from after to", `/usage?from=${T0 + 10}&to=${T0}`, /earlier than to/],
    ["too many minute buckets", `/usage?from=0&to=${T0}&groupBy=minute`, /at most 10080/],
    [
      "a tenant that is not an id",
      "/usage?tenant=a%20b",
      /tenant must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit/,
    ],
  ];
  test.each(bad)("%s → 400 problem+json", async (_name, path, detail) => {
    const body = await problem(await get(path), 400);
    expect(body.type).toBe("urn:gatehouse:problem:bad-request");
    expect(body.title).toBe("Bad Request");
    expect(body.detail).toMatch(detail);
  });
});

describe("GET /usage/export", () => {
  test("CSV by default, streamed with a download name", async () => {
    const res = await get(`/usage/export?tenant=globex&from=${T0}&to=${T0 + 2 * HOUR}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="usage-raw.csv"');
    const lines = (await res.text()).split("\r\n");
    expect(lines[0]).toStartWith("time,request_id,tenant,");
    expect(lines[1]).toStartWith("2026-01-01T01:00:00.000Z,g1,globex,globex-a,");
    expect(lines).toHaveLength(3);
  });

  test("daily NDJSON totals", async () => {
    const res = await get(`/usage/export?format=ndjson&granularity=day&from=${T0}&to=${T0 + 24 * HOUR}`);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.tenant, l.requests, l.errors, l.cost_units])).toEqual([
      ["acme", 2, 1, 1],
      ["globex", 1, 0, 1],
    ]);
  });

  test("bad parameters are 400 problem+json, not a broken stream", async () => {
    await problem(await get("/usage/export?format=xml"), 400);
    await problem(await get("/usage/export?granularity=week"), 400);
    await problem(await get(`/usage/export?from=${T0}&to=${T0}`), 400);
    await problem(await get("/usage/export?limit=5"), 400);
  });
});

describe("OpenAPI", () => {
  test("both routes are documented under the usage tag with 200 and 400 responses", async () => {
    const db = openDb(":memory:");
    const usage = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0) });
    const documented = new Elysia().use(openapi()).use(usagePlugin({ usage }));
    const spec = (await (await documented.handle(new Request("http://localhost/openapi/json"))).json()) as {
      paths: Record<string, { get: { tags: string[]; summary: string; responses: Record<string, unknown> } }>;
    };
    for (const path of ["/usage", "/usage/export"]) {
      const op = spec.paths[path]!.get;
      expect(op.tags).toEqual(["usage"]);
      expect(op.summary.length).toBeGreaterThan(0);
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "400"]));
    }
  });
});

describe("parseInstant", () => {
  test("RFC 3339 with offsets and fractions, or epoch ms", () => {
    expect(parseInstant("2026-01-01T00:00:00Z")).toBe(T0);
    expect(parseInstant("2026-01-01t01:30:00+01:30")).toBe(T0);
    expect(parseInstant("2025-12-31T23:00:00.123456-01:00")).toBe(T0 + 123);
    expect(parseInstant(String(T0))).toBe(T0);
    expect(parseInstant("2024-02-29T00:00:00Z")).toBe(Date.UTC(2024, 1, 29));
  });

  test("refuses what is not an instant", () => {
    for (const s of [
      "2026-01-01",
      "2026-13-01T00:00:00Z",
      "2025-02-29T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:00:60Z",
      "2026-01-01T00:00:00",
      "-5",
      "1e3",
    ]) {
      expect(parseInstant(s)).toBeNull();
    }
  });
});
