/**
 * Routes whose cost is read from the response (`costFrom`), through a test-mode gateway in front of a
 * real upstream: counted in limits, quotas and usage rows when the response ends, exactly, however
 * many requests run at once, and without holding a streamed response back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import type { Server } from "bun";
import { prng } from "../../src/lib/prng.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const T = Date.UTC(2030, 0, 1, 12);
const enc = new TextEncoder();

let upstream: Server<undefined>;
let gw: TestGateway;
/** Resolves the held response's second half (see /v1/hold). */
let release: () => void = () => {};

beforeAll(() => {
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const u = new URL(req.url);
      const tokens = u.searchParams.get("tokens");
      const usage = tokens === null ? "{}" : `{"total_tokens":${tokens}}`;
      switch (u.pathname) {
        case "/v1/completions": // a Content-Length: read whole by the gateway
          return new Response(`{"id":"c1","usage":${usage}}`, {
            headers: { "content-type": "application/json" },
          });
        case "/v1/stream": // chunked: relayed as it comes
          return new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(enc.encode('{"id":"s1",'));
                c.enqueue(enc.encode(`"usage":${usage}}`));
                c.close();
              },
            }),
            { headers: { "content-type": "application/json" } },
          );
        case "/v1/gzip":
          return new Response(zlib.gzipSync(enc.encode(`{"usage":${usage},"pad":"${"x".repeat(3000)}"}`)), {
            headers: { "content-type": "application/json", "content-encoding": "gzip" },
          });
        case "/v1/text":
          return new Response("not json", { headers: { "content-type": "text/plain" } });
        case "/v1/units":
          return new Response("ok", { headers: { "x-usage-units": u.searchParams.get("u") ?? "" } });
        case "/v1/hold": {
          const rest = new Promise<void>((resolve) => {
            release = resolve;
          });
          return new Response(
            new ReadableStream({
              async start(c) {
                c.enqueue(enc.encode('{"usage":'));
                await rest;
                c.enqueue(enc.encode(`${usage}}`));
                c.close();
              },
            }),
          );
        }
      }
      return new Response("ok");
    },
  });
  gw = startTestGateway(
    `version: 1
upstreams:
  llm: { url: "\${UP}" }
plans:
  metered:
    limits: [{ limit: 100000000, window: 1h, name: hourly }]
    quota: { limit: 100000000, period: day, name: daily }
    rules: [{ allow: "* /v1/**" }]
  tiny:
    quota: { limit: 100, period: day, name: daily }
    rules: [{ allow: "* /v1/**" }]
routes:
  - { match: "* /v1/**", upstream: llm }
  - { match: "POST /v1/completions", upstream: llm, costFrom: { json: usage.total_tokens } }
  - { match: "POST /v1/stream", upstream: llm, costFrom: { json: usage.total_tokens } }
  - { match: "POST /v1/gzip", upstream: llm, costFrom: { json: usage.total_tokens, maxBytes: 4kb } }
  - { match: "POST /v1/text", upstream: llm, costFrom: { json: usage.total_tokens, fallback: 3 } }
  - { match: "POST /v1/hold", upstream: llm, costFrom: { json: usage.total_tokens } }
  - { match: "POST /v1/units", upstream: llm, cost: 2, costFrom: { header: x-usage-units, fallback: 5 } }
tenants:
  acme: { plan: metered, keys: [{ id: acme-key, secret: acme-secret-0001 }] }
  small: { plan: tiny, keys: [{ id: small-key, secret: small-secret-0001 }] }
  other: { plan: metered, keys: [{ id: other-key, secret: other-secret-0001 }] }
`,
    { env: { UP: `http://127.0.0.1:${upstream.port}` }, testClockStart: T },
  );
});
afterAll(async () => {
  await gw.close();
  await upstream.stop(true);
});

async function send(path: string, secret = "acme-secret-0001") {
  const res = await fetch(`${gw.dataUrl}${path}`, { method: "POST", headers: { "x-api-key": secret } });
  const body = await res.text();
  return { status: res.status, body, requestId: res.headers.get("x-request-id")! };
}

/** The counts explain finds for a tenant's key: name → used. */
async function used(keyId: string): Promise<Record<string, number>> {
  const res = await fetch(`${gw.adminUrl}/explain`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: keyId, method: "GET", path: "/v1/x" }),
  });
  const e = (await res.json()) as { limits: { name: string; used: number }[] };
  return Object.fromEntries(e.limits.map((l) => [l.name, l.used]));
}

/** Usage rows of a tenant, as the raw export gives them: request id → cost. */
async function rows(tenant: string): Promise<Map<string, number>> {
  const q = new URLSearchParams({
    format: "ndjson",
    tenant,
    from: new Date(T - 3_600_000).toISOString(),
    to: new Date(T + 3_600_000).toISOString(),
  });
  const text = await (await fetch(`${gw.adminUrl}/usage/export?${q}`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n").filter(Boolean)) {
    const r = JSON.parse(line) as { request_id: string; cost_units: number };
    out.set(r.request_id, r.cost_units);
  }
  return out;
}

describe("a cost read from the response", () => {
  test("counts in limits, quotas and the usage row; missing or malformed, the fallback", async () => {
    const cases: [string, number][] = [
      ["/v1/completions?tokens=42", 42], // whole body
      ["/v1/stream?tokens=17", 17], // streamed body
      ["/v1/gzip?tokens=9", 9], // compressed: read inflated, sent as it came
      ["/v1/completions", 1], // no field: the route's cost
      ["/v1/completions?tokens=%22a%22", 1], // a string
      ["/v1/text", 3], // not JSON: the configured fallback
      ["/v1/units?u=30", 30], // a header
      ["/v1/units?u=1", 2], // below the route's cost: the route's cost
      ["/v1/units?u=lots", 5], // malformed: the fallback
      ["/v1/items", 1], // a route that measures nothing
    ];
    const before = await used("other-key");
    let total = 0;
    const want = new Map<string, number>();
    for (const [path, cost] of cases) {
      const r = await send(path, "other-secret-0001");
      expect([path, r.status]).toEqual([path, 200]);
      want.set(r.requestId, cost);
      total += cost;
    }
    expect(before).toEqual({ hourly: 0, daily: 0 });
    expect(await used("other-key")).toEqual({ hourly: total, daily: total });
    expect(await rows("other")).toEqual(want);
  });

  test("the gzip body reaches the client as it came", async () => {
    const res = await fetch(`${gw.dataUrl}/v1/gzip?tokens=9`, {
      method: "POST",
      headers: { "x-api-key": "acme-secret-0001", "accept-encoding": "gzip" },
      decompress: false,
    } as RequestInit);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const body = Buffer.from(await res.arrayBuffer());
    expect(JSON.parse(zlib.gunzipSync(body).toString()).usage.total_tokens).toBe(9);
  });

  test("post-paid: admitted on the route's cost; once the quota is spent, the next request is refused", async () => {
    expect((await send("/v1/completions?tokens=60", "small-secret-0001")).status).toBe(200);
    expect((await send("/v1/completions?tokens=60", "small-secret-0001")).status).toBe(200);
    expect(await used("small-key")).toEqual({ daily: 120 });
    const refused = await send("/v1/completions?tokens=1", "small-secret-0001");
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).type).toBe("urn:gatehouse:problem:quota-exhausted");
  });

  test("many concurrent requests with known costs: counts and usage rows are exact", async () => {
    const rnd = prng(11);
    const before = await used("acme-key");
    const paths = ["/v1/completions", "/v1/stream", "/v1/gzip"];
    // In flight at once: this test's requests and the gateway's to the upstream, in one process whose
    // fetch holds at most 256 connections (more wait for one, and these would wait for each other).
    const plan = Array.from({ length: 120 }, () => ({
      path: paths[Math.floor(rnd() * paths.length)]!,
      tokens: Math.floor(rnd() * 5000),
    }));
    const answers = await Promise.all(plan.map((p) => send(`${p.path}?tokens=${p.tokens}`)));
    const want = new Map<string, number>();
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      want.set(a.requestId, Math.max(1, plan[i]!.tokens));
    });
    const total = [...want.values()].reduce((s, n) => s + n, 0);
    expect(await used("acme-key")).toEqual({ hourly: before.hourly! + total, daily: before.daily! + total });
    const got = await rows("acme");
    for (const [id, cost] of want) expect([id, got.get(id)]).toEqual([id, cost]);
  });

  test("a measured body streams through: the client reads its start before the upstream sends the rest", async () => {
    const before = await used("acme-key");
    const res = await fetch(`${gw.dataUrl}/v1/hold?tokens=250`, {
      method: "POST",
      headers: { "x-api-key": "acme-secret-0001" },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('{"usage":');
    // Nothing is counted beyond the admission yet: the response has not ended.
    expect(await used("acme-key")).toEqual({ hourly: before.hourly! + 1, daily: before.daily! + 1 });
    release();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toBe('{"total_tokens":250}}');
    expect(await used("acme-key")).toEqual({ hourly: before.hourly! + 250, daily: before.daily! + 250 });
  });
});
