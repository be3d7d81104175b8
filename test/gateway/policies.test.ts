import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import { hashKey } from "../../src/lib/key-hash.ts";
import { basicConfig, startTestGateway, type TestGateway } from "../support/gateway.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
let gw: TestGateway;
const clock = new ManualClock(Date.parse("2026-06-01T00:00:00Z"));

const extra = `  hashed:
    plan: basic
    keys: [{ id: hashed-key, hash: "${hashKey("hashed-secret-0001")}" }]
  expiring:
    plan: basic
    keys: [{ id: expiring-key, secret: expiring-secret-01, expires: "2026-06-01T01:00:00Z" }]
  off:
    plan: basic
    disabled: true
    keys: [{ id: off-key, secret: off-secret-000001 }]
  keyoff:
    plan: basic
    keys: [{ id: keyoff-key, secret: keyoff-secret-0001, disabled: true }]
  getdeny:
    plan: basic
    rules: [{ deny: "GET /v1/exports/**" }]
    keys: [{ id: getdeny-key, secret: getdeny-secret-01 }]
`;

beforeAll(() => {
  up = startUpstream();
  gw = startTestGateway(
    basicConfig(up.url, extra).replace(
      "routes:\n",
      "routes:\n  - match: POST /v1/reports/**\n    upstream: up\n    cost: 10\n",
    ),
    { clock },
  );
});
afterAll(async () => {
  await gw.close();
  await up.stop();
});

const call = (path: string, headers: Record<string, string>, init: RequestInit = {}) =>
  fetch(gw.dataUrl + path, { headers, ...init });

async function problem(res: Response) {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["detail", "request_id", "status", "title", "type"]);
  expect(body.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

describe("authentication", () => {
  const refusals: [string, Record<string, string>, string][] = [
    ["no credential", {}, "/v1/x"],
    ["unknown key", { "x-api-key": "not-a-real-key-1" }, "/v1/x"],
    [
      "two different credentials",
      { "x-api-key": "acme-secret-0001", authorization: "Bearer globex-secret-0001" },
      "/v1/x",
    ],
    ["duplicate X-API-Key values", { "x-api-key": "acme-secret-0001, acme-secret-0001" }, "/v1/x"],
    ["a non-bearer Authorization", { authorization: "Basic YWNtZTpzZWNyZXQ=" }, "/v1/x"],
    ["a disabled tenant", { "x-api-key": "off-secret-000001" }, "/v1/x"],
    ["a disabled key", { "x-api-key": "keyoff-secret-0001" }, "/v1/x"],
    ["a path that has no route", {}, "/nowhere"],
    ["a path the rules deny", {}, "/v1/admin/users"],
  ];
  test.each(refusals)("%s → the same 401", async (_name, headers, path) => {
    const res = await call(path, headers);
    expect(res.status).toBe(401);
    const body = await problem(res);
    const { request_id: _, ...rest } = body;
    expect(rest).toEqual({
      type: "urn:gatehouse:problem:unauthorized",
      title: "Unauthorized",
      status: 401,
      detail: "A valid API key is required: send it as Authorization: Bearer <key> or X-API-Key: <key>.",
    });
  });

  test("the same key in both headers is accepted; bearer scheme is case-insensitive", async () => {
    expect(
      (await call("/v1/x", { "x-api-key": "acme-secret-0001", authorization: "Bearer acme-secret-0001" }))
        .status,
    ).toBe(200);
    expect((await call("/v1/x", { authorization: "bearer acme-secret-0001" })).status).toBe(200);
  });

  test("a key declared only by its hash works", async () => {
    expect((await call("/v1/x", { "x-api-key": "hashed-secret-0001" })).status).toBe(200);
    expect(up.received.at(-1)!.headers["x-gatehouse-key-id"]).toBe("hashed-key");
  });

  test("an expired key is refused once the clock passes its expiry", async () => {
    expect((await call("/v1/x", { "x-api-key": "expiring-secret-01" })).status).toBe(200);
    clock.advance(60 * 60 * 1000);
    expect((await call("/v1/x", { "x-api-key": "expiring-secret-01" })).status).toBe(401);
  });
});

describe("rules and routes", () => {
  const acme = { "x-api-key": "acme-secret-0001" };
  const globex = { "x-api-key": "globex-secret-0001" };

  test("deny wins over allow", async () => {
    const res = await call("/v1/admin/users", acme);
    expect(res.status).toBe(403);
    expect((await problem(res)).type).toBe("urn:gatehouse:problem:forbidden");
  });

  test("default deny: a method no rule allows is refused", async () => {
    expect((await call("/v1/items", globex)).status).toBe(200);
    expect((await call("/v1/items", globex, { method: "POST", body: "{}" })).status).toBe(403);
    expect((await call("/v1/items", globex, { method: "HEAD" })).status).toBe(403);
  });

  test("a deny naming GET denies HEAD too: servers run the GET handler for a HEAD", async () => {
    const key = { "x-api-key": "getdeny-secret-01" };
    const before = up.received.length;
    expect((await call("/v1/exports/all", key)).status).toBe(403);
    expect((await call("/v1/exports/all", key, { method: "HEAD" })).status).toBe(403);
    expect(up.received.length).toBe(before);
    expect((await call("/v1/items", key, { method: "HEAD" })).status).toBe(200);
  });

  test("a path with no route is 404", async () => {
    const res = await call("/v2/items", acme);
    expect(res.status).toBe(404);
    expect((await problem(res)).type).toBe("urn:gatehouse:problem:not-found");
  });

  test("rules are judged on the method that reaches the upstream, not an override header", async () => {
    const res = await call(
      "/v1/items",
      { ...globex, "x-http-method-override": "GET" },
      { method: "POST", body: "x" },
    );
    expect(res.status).toBe(403);
    await call("/v1/items", { ...globex, "x-http-method-override": "DELETE" });
    expect(up.received.at(-1)!.method).toBe("GET");
  });
});

describe("request bodies", () => {
  const acme = { "x-api-key": "acme-secret-0001" };
  test("a declared body over the limit is 413 and is not forwarded", async () => {
    const before = up.received.length;
    const res = await call(
      "/v1/upload",
      { ...acme, "content-type": "application/octet-stream" },
      {
        method: "POST",
        body: new Uint8Array(10 * 1024 * 1024 + 1),
      },
    );
    expect(res.status).toBe(413);
    expect((await problem(res)).type).toBe("urn:gatehouse:problem:payload-too-large");
    expect(up.received.length).toBe(before);
  });

  test("a refused request with a body closes its connection; one without keeps it", async () => {
    const withBody = await call("/v1/admin/x", acme, { method: "POST", body: "unread" });
    expect(withBody.status).toBe(403);
    expect(withBody.headers.get("connection")).toBe("close");
    const without = await call("/v1/admin/x", acme);
    expect(without.status).toBe(403);
    expect(without.headers.get("connection")).not.toBe("close");
  });

  test("a streamed (chunked) body over the limit is 413", async () => {
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const body = new ReadableStream({
      pull(c) {
        if (sent++ < 12) c.enqueue(chunk);
        else c.close();
      },
    });
    const res = await call("/v1/upload", acme, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
  });
});
