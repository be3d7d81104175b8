/**
 * Rules that test headers and query parameters: a deny matches every reading an upstream could make
 * (repeats, case, encodings, separators), an allow only the one unambiguous reading.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { PredicateDecl } from "../../src/config/schema.ts";
import {
  compilePredicates,
  predicatesHold,
  type RequestPredicate,
} from "../../src/gateway/request-predicates.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const query = (name: string, p: PredicateDecl) => compilePredicates(undefined, { [name]: p });
const denyQuery = (predicates: RequestPredicate[], q: string) =>
  predicatesHold(predicates, true, new Headers(), q);
const allowQuery = (predicates: RequestPredicate[], q: string) =>
  predicatesHold(predicates, false, new Headers(), q);

describe("a deny on a query parameter matches any reading", () => {
  const admin = query("admin", { equals: "1" });

  test.each([
    "admin=1",
    "admin=0&admin=1",
    "admin=1&admin=0",
    "x=1&admin=0&admin=1&y=2",
    "ADMIN=1",
    "Admin=1",
    "%61dmin=1",
    "%2561dmin=1",
    "admin=%31",
    "admin=%2531",
    "admin=1%20",
    "admin=+1",
    "admin=%091",
    "admin=0,1",
    "admin=0%2C1",
    "x=0;admin=1",
    "admin[]=1",
    "admin[x]=1",
    "admin%00=1",
    "%20admin=1",
    "admin=1&",
    "&&admin=1",
    "admin=%zz&admin=1",
  ])("?%s is denied", (q) => {
    expect(denyQuery(admin, q)).toBe(true);
  });

  test.each([
    "",
    "admin=0",
    "admin=10",
    "admin=",
    "admin",
    "administrator=1",
    "notadmin=1",
    "x=admin=1",
    "x=admin%3D1",
    "ad=min=1",
  ])("?%s is not", (q) => {
    expect(denyQuery(admin, q)).toBe(false);
  });

  test("values are compared in any case; names read as PHP reads them; present means any value", () => {
    const debug = query("debug_mode", { oneOf: ["true", "on"] });
    for (const q of ["debug_mode=TRUE", "debug.mode=on", "debug%20mode=True", "Debug.Mode=ON"]) {
      expect(denyQuery(debug, q)).toBe(true);
    }
    expect(denyQuery(debug, "debug_mode=false")).toBe(false);
    const present = query("trace", { present: true });
    for (const q of ["trace", "trace=", "TRACE=0", "a=1;trace", "trace[]=x"])
      expect(denyQuery(present, q)).toBe(true);
    expect(denyQuery(present, "tracer=1")).toBe(false);
  });
});

describe("an allow on a query parameter needs the one unambiguous reading", () => {
  const format = query("format", { equals: "json" });

  test.each(["format=json", "page=2&format=json", "format=js%6Fn"])("?%s is allowed", (q) => {
    expect(allowQuery(format, q)).toBe(true);
  });

  test.each([
    "",
    "format=xml",
    "format=JSON",
    "FORMAT=json",
    "format[]=json",
    "format",
    "format=json&format=xml",
    "format=xml&format=json",
    "format=json&FORMAT=xml",
    "format=json;format=xml",
    "format=json&format[]=xml",
    "format=json%2C",
    "format=%256Aon",
  ])("?%s is not", (q) => {
    expect(allowQuery(format, q)).toBe(false);
  });
});

describe("header predicates", () => {
  const headers = (entries: [string, string][]) => new Headers(entries);

  test("a deny matches any spelling of the name, any repetition and any case of the value", () => {
    const role = compilePredicates({ "X-Role": { equals: "admin" } }, undefined);
    for (const h of [
      [["x-role", "admin"]],
      [["X-ROLE", "Admin"]],
      [["x_role", "admin"]],
      [["x-role", "user, admin"]],
      [
        ["x-role", "user"],
        ["x-role", "admin"],
      ],
      [
        ["x-role", "user"],
        ["x_role", "admin"],
      ],
    ] as [string, string][][]) {
      expect(predicatesHold(role, true, headers(h), "")).toBe(true);
    }
    expect(predicatesHold(role, true, headers([["x-role", "administrator"]]), "")).toBe(false);
    expect(predicatesHold(role, true, headers([["x-roles", "admin"]]), "")).toBe(false);
    const debug = compilePredicates({ "x-debug": { present: true } }, undefined);
    expect(predicatesHold(debug, true, headers([["X_Debug", ""]]), "")).toBe(true);
    expect(predicatesHold(debug, true, headers([]), "")).toBe(false);
  });

  test("an allow needs the exact name and every spelling of it carrying an accepted value", () => {
    const client = compilePredicates({ "x-client": { oneOf: ["web", "ios"] } }, undefined);
    expect(predicatesHold(client, false, headers([["X-Client", "web"]]), "")).toBe(true);
    expect(predicatesHold(client, false, headers([["x-client", "ios"]]), "")).toBe(true);
    for (const h of [
      [],
      [["x-client", "WEB"]],
      [["x_client", "web"]],
      [
        ["x-client", "web"],
        ["x-client", "web"],
      ],
      [["x-client", "web, android"]],
      [
        ["x-client", "web"],
        ["x_client", "android"],
      ],
    ] as [string, string][][]) {
      expect(predicatesHold(client, false, headers(h), "")).toBe(false);
    }
  });

  test("every predicate of a rule must hold", () => {
    const both = compilePredicates({ "x-debug": { present: true } }, { admin: { equals: "1" } });
    expect(predicatesHold(both, true, headers([["x-debug", "1"]]), "admin=1")).toBe(true);
    expect(predicatesHold(both, true, headers([["x-debug", "1"]]), "admin=0")).toBe(false);
    expect(predicatesHold(both, true, headers([]), "admin=1")).toBe(false);
  });
});

describe("through the data plane", () => {
  let gw: TestGateway;
  beforeAll(() => {
    gw = startTestGateway(
      `version: 1
upstreams:
  echo: { mock: echo }
plans:
  guarded:
    rules:
      - allow: "* /v1/**"
      - deny: "* /v1/**"
        query: { admin: { equals: "1" } }
      - deny: "POST /v1/**"
        headers: { x-debug: { present: true } }
      - allow: "GET /v2/export"
        query: { format: { oneOf: [json, csv] } }
routes:
  - { match: "* /**", upstream: echo }
tenants:
  acme:
    plan: guarded
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
`,
      { testClockStart: Date.UTC(2030, 0, 1) },
    );
  });
  afterAll(() => gw.close());

  const send = async (target: string, headers: Record<string, string> = {}, method = "GET") => {
    const res = await fetch(`${gw.dataUrl}${target}`, {
      method,
      headers: { "x-api-key": "acme-secret-0001", ...headers },
    });
    await res.arrayBuffer();
    return res.status;
  };

  test("denied readings are 403 and never reach the upstream; others pass", async () => {
    for (const q of ["admin=1", "admin=0&admin=1", "ADMIN=1", "admin=%31", "x=0;admin=1", "admin[]=1"]) {
      expect([q, await send(`/v1/items?${q}`)]).toEqual([q, 403]);
    }
    expect(await send("/v1/items?admin=0")).toBe(200);
    expect(await send("/v1/items", { X_Debug: "1" }, "POST")).toBe(403);
    expect(await send("/v1/items", {}, "POST")).toBe(200);
    expect(await send("/v2/export?format=csv")).toBe(200);
    expect(await send("/v2/export?format=csv&format=xml")).toBe(403);
    expect(await send("/v2/export")).toBe(403);
  });

  test("explain lists the rules whose predicates matched", async () => {
    const res = await fetch(`${gw.adminUrl}/explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: "acme-key", method: "GET", path: "/v1/items?Admin=1" }),
    });
    const e = (await res.json()) as { status: number; refusedBy: string; rules: { declaredAt: string }[] };
    expect(e.status).toBe(403);
    expect(e.refusedBy).toBe("rules");
    expect(e.rules.map((r) => r.declaredAt)).toEqual(["plans.guarded.rules[0]", "plans.guarded.rules[1]"]);
  });
});
