/**
 * Requests an attacker of a gateway would send, over raw sockets, with the upstream recording
 * exactly what reached it. Nothing may reach a denied path, and nothing ambiguous may pass at all.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { basicConfig, startTestGateway, type TestGateway } from "../support/gateway.ts";
import { get, rawRequest } from "../support/raw-http.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
let gw: TestGateway;
let port: number;
const KEY = "X-API-Key: acme-secret-0001";
const INITECH = "X-API-Key: initech-secret-0001";

// Denies whose literals have upper case, a reserved character and a non-ASCII one.
const extra = `  initech:
    plan: basic
    rules:
      - deny: "POST /v1/items:purge"
      - deny: "* /v1/Internal/**"
      - deny: "* /v1/café/**"
    keys: [{ id: initech-key, secret: initech-secret-0001 }]
  hooli:
    plan: readonly
    rules: [{ allow: "POST /v1/reports/**" }]
    keys: [{ id: hooli-key, secret: hooli-secret-0001 }]
`;

beforeAll(() => {
  up = startUpstream();
  gw = startTestGateway(basicConfig(up.url, extra));
  port = Number(new URL(gw.dataUrl).port);
});
afterAll(async () => {
  await gw.close();
  await up.stop();
});

const reachedAdmin = () => up.received.filter((r) => r.target.toLowerCase().includes("admin"));

describe("paths that try to reach /v1/admin/** (denied for acme)", () => {
  const denied = [
    "/v1/admin/users",
    "/v1/../v1/admin/users",
    "/v1/items/../admin/users",
    "/v1/%2e%2e/v1/admin/users",
    "/v1/%2E%2e/v1/admin/users",
    "/v1/.%2e/v1/admin/users",
    "/v1/%61dmin/users",
    "/v1/%41%44MIN/../admin/users",
    "/v1//admin/users",
    "//v1/admin/users",
    "/v1/./admin/users",
    "/v1\\admin\\users",
    "/v1/items/..\\admin/users",
    "http://evil.example/v1/admin/users",
    // a case-insensitive upstream serves these as /v1/admin/users
    "/v1/ADMIN/users",
    "/v1/Admin/users",
    "/v1/aDmIn/users",
    "/v1/%41DMIN/users",
    "/v1/items/../ADMIN/users",
  ];
  test.each(denied)("%s → 403, nothing forwarded", async (target) => {
    const res = await rawRequest(port, get(target, [KEY]));
    expect(res.status).toBe(403);
    expect(reachedAdmin()).toEqual([]);
  });

  const ambiguous = [
    "/v1/admin%2fusers",
    "/v1/admin%2Fusers",
    "/v1/admin%5cusers",
    "/v1/admin;jsessionid=1/users",
    "/v1/items/..;/admin/users",
    "/v1/%252e%252e/admin/users",
    "/v1/%2561dmin/users",
    "/v1/items%00/admin",
    "/v1/items%0d%0aX-Injected:%201",
    "/v1/items%zz",
    // our own decoding of %34%31 and %36%31 would assemble %2541 and %2561: admin on a second decoding
    "/v1/%25%34%31dmin/users",
    "/v1/%25%36%31dmin/users",
    "/v1/%25%32%65%25%32%65/v1/admin/users",
    "/v1/%25u0061dmin/users",
    // overlong and other invalid UTF-8: lenient decoders read %C0%AE as . and %C0%AF as /
    "/v1/items/%C0%AE%C0%AE/admin/users",
    "/v1/items/%C0%AE%C0%AE%C0%AFadmin/users",
    "/v1/items/%E0%80%AE%E0%80%AE/admin/users",
    "/v1/items%ED%A0%80",
    "/v1/items%F4%90%80%80",
    "/v1/items%80",
    "/v1/items%C3",
    // a server that decodes before splitting sees /v1/admin, then a fragment or a query
    "/v1/admin%23/users",
    "/v1/admin%3F/users",
    "/v1/admin%3f/users",
    // NFKC or case mapping makes these /v1/admin/users or /v1/items/1/secret
    "/v1/%EF%BD%81dmin/users",
    "/v1/ａｄｍｉｎ/users",
    "/v1/%EF%BC%A1%EF%BC%A4%EF%BC%AD%EF%BC%A9%EF%BC%AE/users",
    "/v1/adm%C4%B1n/users",
    "/v1/items%EF%BC%8F..%EF%BC%8Fadmin/users",
    "/v1/items/1/%C5%BFecret",
    "/v1/items/1/secr%E2%84%AAt",
  ];
  test.each(ambiguous)("%s → 400, nothing forwarded", async (target) => {
    const before = up.received.length;
    const res = await rawRequest(port, get(target, [KEY]));
    expect(res.status).toBe(400);
    expect(up.received.length).toBe(before);
  });

  test("raw bytes that are not UTF-8 are refused, not forwarded as U+FFFD", async () => {
    const before = up.received.length;
    const raw = Buffer.from(get("/v1/items/\xC0\xAE\xC0\xAE/admin/users", [KEY]), "latin1");
    const res = await rawRequest(port, raw);
    expect(res.status).toBe(400);
    expect(up.received.length).toBe(before);
  });

  test("an allowed path arrives in its canonical form", async () => {
    const res = await rawRequest(port, get("/v1//items/./a/../%62?x=%2F", [KEY]));
    expect(res.status).toBe(200);
    expect(up.received.at(-1)!.target).toBe("/v1/items/b?x=%2F");
  });

  test("an absolute-form target is routed by its path and never changes the upstream host", async () => {
    const res = await rawRequest(port, get("http://evil.example/v1/items", [KEY]));
    expect(res.status).toBe(200);
    expect(up.received.at(-1)!.headers.host).toBe(`127.0.0.1:${up.port}`);
  });
});

describe("denies hold under every spelling an upstream reads as theirs", () => {
  test.each([
    ["POST", "/v1/items:purge"],
    ["POST", "/v1/items%3Apurge"],
    ["POST", "/v1/ITEMS%3aPURGE"],
    ["GET", "/v1/internal/x"],
    ["GET", "/v1/INTERNAL/x"],
    ["GET", "/v1/Internal/x"],
    ["GET", "/v1/café/x"],
    ["GET", "/v1/caf%c3%a9/x"],
    ["GET", "/v1/CAF%C3%89/x"],
  ])("%s %s → 403, nothing forwarded", async (method, target) => {
    const before = up.received.length;
    const res = await rawRequest(port, get(target, [INITECH]).replace(/^GET/, method));
    expect(res.status).toBe(403);
    expect(up.received.length).toBe(before);
  });

  test.each([
    ["GET", "/v1/items:purge"],
    ["POST", "/v1/items:purged"],
    ["GET", "/v1/internals/x"],
    ["GET", "/v1/cafe/x"],
    ["GET", "/v1/caf%C3%A8/x"],
  ])("%s %s, which no deny names, passes", async (method, target) => {
    const res = await rawRequest(port, get(target, [INITECH]).replace(/^GET/, method));
    expect(res.status).toBe(200);
  });

  test("an allow matches its exact spelling only, which is stricter than the upstream, never looser", async () => {
    const post = (target: string) =>
      rawRequest(port, get(target, ["X-API-Key: hooli-secret-0001"]).replace(/^GET/, "POST"));
    expect((await post("/v1/reports/x")).status).toBe(200);
    const before = up.received.length;
    expect((await post("/v1/REPORTS/x")).status).toBe(403);
    expect((await post("/v1/report%73/x")).status).toBe(200); // %73 is s: the same canonical path
    expect(up.received.length).toBe(before + 1);
  });
});

describe("header tricks", () => {
  test("duplicate and spoofed identity headers are removed; the key decides the tenant", async () => {
    const res = await rawRequest(
      port,
      get("/v1/items", [
        KEY,
        "X-Gatehouse-Tenant: globex",
        "x-gatehouse-tenant: other",
        "X-Gatehouse-Key-Id: globex-key",
      ]),
    );
    expect(res.status).toBe(200);
    expect(up.received.at(-1)!.headers["x-gatehouse-tenant"]).toBe("acme");
    expect(up.received.at(-1)!.headers["x-gatehouse-key-id"]).toBe("acme-key");
  });

  test("naming the gateway's own headers in Connection does not remove them", async () => {
    const res = await rawRequest(
      port,
      [
        "GET /v1/items HTTP/1.1",
        "Host: gateway.test",
        KEY,
        "Connection: close, X-Gatehouse-Tenant, X-Gatehouse-Key-Id, Authorization, X-Request-Id",
        "",
        "",
      ].join("\r\n"),
    );
    expect(res.status).toBe(200);
    const h = up.received.at(-1)!.headers;
    expect(h["x-gatehouse-tenant"]).toBe("acme");
    expect(h["x-gatehouse-key-id"]).toBe("acme-key");
    expect(h.authorization).toBe("Bearer upstream-secret");
    expect(h["x-request-id"]).toBeDefined();
  });

  test("an Upgrade request is forwarded as a plain request", async () => {
    await rawRequest(port, get("/v1/items", [KEY, "Upgrade: websocket", "Sec-WebSocket-Version: 13"]));
    expect(up.received.at(-1)!.headers.upgrade).toBeUndefined();
  });

  test("identity, key and forwarding headers in their CGI spelling (`_` for `-`) never reach the upstream", async () => {
    // CGI, WSGI, PHP and Rack read X_Gatehouse_Tenant as HTTP_X_GATEHOUSE_TENANT, like the dashed one.
    const res = await rawRequest(
      port,
      get("/v1/items", [
        KEY,
        "X_Gatehouse_Tenant: globex",
        "x-gatehouse_key-id: globex-key",
        "X_Gatehouse_Anything: globex",
        "X_API_KEY: globex-secret-0001",
        "X_Forwarded_For: 6.6.6.6",
        "X_Forwarded_Proto: https",
        "X_Forwarded_Host: evil.example",
        "X_Request_Id: spoofed",
        "X_Tenant_Id: globex",
        "X_Original_URL: /v1/admin/users",
        "X_HTTP_Method_Override: DELETE",
        "Proxy_Authorization: Basic Z2xvYmV4Omdsb2JleA==",
        "Keep_Alive: timeout=999",
        "X_Custom_Thing: kept",
      ]),
    );
    expect(res.status).toBe(200);
    const h = up.received.at(-1)!.headers;
    expect(Object.keys(h).filter((n) => n.includes("_"))).toEqual(["x_custom_thing"]);
    expect(h["x-gatehouse-tenant"]).toBe("acme");
    expect(h["x-gatehouse-key-id"]).toBe("acme-key");
    expect(h["x-forwarded-for"]).toBe("127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("http");
    for (const leak of [
      "globex",
      "6.6.6.6",
      "https",
      "evil.example",
      "spoofed",
      "admin",
      "DELETE",
      "Basic",
      // Not the bare "999": a request id's hex digits may hold it.
      "timeout=999",
    ]) {
      expect(JSON.stringify(h)).not.toContain(leak);
    }
  });

  test("no header can give the upstream a second authority, whatever the target's form", async () => {
    const overrides = [
      "Host: evil.example",
      "X-Forwarded-Host: evil.example",
      "X_Forwarded_Host: evil.example",
      "X-Forwarded-Server: evil.example",
      "X-Host: evil.example",
      "X_Host: evil.example",
      "X-Original-Host: evil.example",
      "X-HTTP-Host-Override: evil.example",
      "X_HTTP_Host_Override: evil.example",
      "Forwarded: host=evil.example;proto=https",
      "X-Original-URL: http://evil.example/v1/admin/users",
      "X-Rewrite-URL: //evil.example/v1/admin/users",
    ];
    for (const target of ["/v1/items", "http://evil.example/v1/items", "http://evil.example:8443/v1/items"]) {
      const res = await rawRequest(
        port,
        [`GET ${target} HTTP/1.1`, ...overrides, KEY, "Connection: close", "", ""].join("\r\n"),
      );
      expect(res.status).toBe(200);
      const r = up.received.at(-1)!;
      expect(r.target).toBe("/v1/items");
      expect(r.headers.host).toBe(`127.0.0.1:${up.port}`);
      expect(JSON.stringify(r.headers)).not.toContain("evil.example");
    }
  });

  test("two credentials, one valid, are refused", async () => {
    const res = await rawRequest(port, get("/v1/items", [KEY, "X-API-Key: globex-secret-0001"]));
    expect(res.status).toBe(401);
  });

  test("request smuggling with both Content-Length and Transfer-Encoding does not reach a denied path", async () => {
    const smuggled = "GET /v1/admin/users HTTP/1.1\r\nHost: x\r\nX-API-Key: acme-secret-0001\r\n\r\n";
    const body = `0\r\n\r\n${smuggled}`;
    const res = await rawRequest(
      port,
      [
        "POST /v1/items HTTP/1.1",
        "Host: gateway.test",
        KEY,
        `Content-Length: ${body.length}`,
        "Transfer-Encoding: chunked",
        "",
        body,
      ].join("\r\n"),
    );
    expect([200, 400]).toContain(res.status);
    expect(reachedAdmin()).toEqual([]);
  });

  test("conflicting Content-Length headers are refused", async () => {
    const before = up.received.length;
    const res = await rawRequest(
      port,
      [
        "POST /v1/items HTTP/1.1",
        "Host: gateway.test",
        KEY,
        "Content-Length: 3",
        "Content-Length: 5",
        "Connection: close",
        "",
        "abcde",
      ].join("\r\n"),
    );
    expect(res.status).toBe(400);
    expect(up.received.length).toBe(before);
  });

  test("a header line with a bare CR or NUL is refused", async () => {
    const res = await rawRequest(
      port,
      `GET /v1/items HTTP/1.1\r\nHost: x\r\n${KEY}\r\nX-A: a\rX-Gatehouse-Tenant: globex\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(400);
  });
});

describe("methods that are never forwarded", () => {
  const request = (line: string, headers: string[] = [KEY]) =>
    rawRequest(port, [line, "Host: gateway.test", ...headers, "Connection: close", "", ""].join("\r\n"));
  const problem = (body: string) => {
    const { request_id, ...rest } = JSON.parse(body) as Record<string, unknown>;
    return rest;
  };

  test.each([
    "TRACE /v1/items HTTP/1.1",
    "TRACE /v1/admin/users HTTP/1.1",
    "CONNECT /v1/items HTTP/1.1",
    "CONNECT evil.example:443 HTTP/1.1",
    "CONNECT http://evil.example/v1/items HTTP/1.1",
  ])("%s → 405 problem, nothing forwarded, with or without a key", async (line) => {
    const before = up.received.length;
    for (const headers of [[KEY], [], ["X-API-Key: wrong"]]) {
      const res = await request(line, headers);
      expect(res.status).toBe(405);
      expect(res.head).toMatch(/content-type: application\/problem\+json/i);
      // RFC 9110: a 405 names the methods that are accepted.
      expect(res.head).toMatch(/^allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r$/im);
      const method = line.split(" ")[0];
      expect(problem(res.body)).toEqual({
        type: "urn:gatehouse:problem:method-not-allowed",
        title: "Method Not Allowed",
        status: 405,
        detail: `${method} requests are not forwarded.`,
      });
      expect(res.body).not.toContain("upstream-secret");
    }
    expect(up.received.length).toBe(before);
  });

  test.each(["OPTIONS * HTTP/1.1", "TRACE * HTTP/1.1", "GET * HTTP/1.1"])(
    "an asterisk-form target (%s) is refused by the server and never forwarded",
    async (line) => {
      const before = up.received.length;
      const res = await request(line);
      expect(res.status).toBe(400);
      expect(up.received.length).toBe(before);
    },
  );

  test("other methods, OPTIONS among them, are forwarded as sent", async () => {
    for (const method of ["OPTIONS", "PATCH", "PROPFIND"]) {
      const res = await request(`${method} /v1/items HTTP/1.1`);
      expect(res.status).toBe(200);
      expect(up.received.at(-1)!.method).toBe(method);
    }
  });
});

// Last, so that it covers every request this file sent.
test("no refused form ever reached the upstream", () => {
  const forms =
    /%25(?:[0-9a-f]{2}|u)|%23|%3f|%c[01]|%e0%[89]|%ed%[ab]|%f4%[9ab]|%f[5-9a-f]|%ef%b[cd]|%ef%bf%bd|%c4%b[01]|%c5%bf|%e2%84%aa/i;
  expect(up.received.length).toBeGreaterThan(0);
  expect(up.received.filter((r) => forms.test(r.target))).toEqual([]);
});
