/**
 * Mass assignment and injection: every body and query parameter refuses unknown fields, server-owned
 * fields, control characters and oversized values with 4xx problem+json, and nothing changes.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { wordsForPattern } from "../../src/admin/validation-words.ts";
import { type AdminFixture, adminFixture, dumpState, expectProblem } from "./helpers.ts";

let f: AdminFixture;
let apiKeyId: string;
beforeEach(async () => {
  f = adminFixture();
  expect((await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } })).status).toBe(201);
  const key = await f.call("POST", "/tenants/newco/keys", { body: { id: "newco-ci" } });
  expect(key.status).toBe(201);
  apiKeyId = key.json.key.id;
});
afterEach(() => f.close());

const SERVER_OWNED = {
  source: "file",
  sourceRef: "gateway.yaml:1",
  createdAt: "2020-01-01T00:00:00Z",
  updatedAt: "2020-01-01T00:00:00Z",
  hash: `sha256:${"b".repeat(64)}`,
  previousHash: `sha256:${"c".repeat(64)}`,
  secret: "ghk_chosen_by_the_client_000000000000000",
  graceUntil: 0,
  lastUsedAt: "2020-01-01T00:00:00Z",
  tenantId: "acme",
  keys: [],
  __proto__x: 1,
  constructor: {},
};

const CONTROL = ["\u0000", "\n", "\r", "\u001b", "\u007f", "\t"];

/** Each body route with a valid body, so a refusal is due to the one thing a test adds. */
function bodyRoutes(): { method: string; path: string; body: Record<string, unknown> }[] {
  return [
    { method: "POST", path: "/tenants", body: { id: "fresh", plan: "free" } },
    { method: "PATCH", path: "/tenants/newco", body: { name: "Renamed" } },
    { method: "POST", path: "/tenants/newco/keys", body: { id: "fresh-key" } },
    { method: "PATCH", path: `/keys/${apiKeyId}`, body: { disabled: true } },
    { method: "POST", path: `/keys/${apiKeyId}/rotate`, body: { gracePeriod: "1h" } },
  ];
}

async function expectRefusedAndUnchanged(method: string, path: string, body: unknown, status = 400) {
  const before = dumpState(f);
  const r = await f.call(method, path, { body });
  const problem = expectProblem(r, status);
  expect(dumpState(f)).toBe(before);
  return problem;
}

describe("request bodies", () => {
  test("each valid body is accepted (the baseline the refusals below differ from)", async () => {
    for (const { method, path, body } of bodyRoutes()) {
      const r = await f.call(method, path, { body });
      expect(r.status, `${method} ${path}`).toBeLessThan(300);
    }
  });

  test("unknown and server-owned fields are refused on every body, and nothing changes", async () => {
    for (const { method, path, body } of bodyRoutes()) {
      for (const [field, value] of Object.entries(SERVER_OWNED)) {
        const problem = await expectRefusedAndUnchanged(method, path, { ...body, [field]: value });
        expect(problem.detail).toContain(field === "__proto__x" ? "__proto__x" : field);
      }
    }
  });

  test("ids cannot be changed or chosen where the server owns them", async () => {
    await expectRefusedAndUnchanged("PATCH", "/tenants/newco", { id: "other" });
    await expectRefusedAndUnchanged("PATCH", `/keys/${apiKeyId}`, { id: "other" });
    await expectRefusedAndUnchanged("POST", `/keys/${apiKeyId}/rotate`, { id: "other" });
  });

  test("a prototype-polluting body is refused and pollutes nothing", async () => {
    await expectRefusedAndUnchanged(
      "POST",
      "/tenants",
      JSON.parse('{"id":"p","plan":"free","__proto__":{"x":1}}'),
    );
    const r = await f.call("POST", "/tenants", {
      raw: '{"id":"p","plan":"free","__proto__":{"polluted":true}}',
    });
    expectProblem(r, 400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test("control characters are refused in ids, names, metadata and every other string", async () => {
    for (const c of CONTROL) {
      await expectRefusedAndUnchanged("POST", "/tenants", { id: `evil${c}id`, plan: "free" });
      await expectRefusedAndUnchanged("POST", "/tenants", { id: "fine", plan: "free", name: `Evil${c}Name` });
      await expectRefusedAndUnchanged("POST", "/tenants", {
        id: "fine",
        plan: "free",
        metadata: { k: `v${c}` },
      });
      await expectRefusedAndUnchanged("POST", "/tenants", {
        id: "fine",
        plan: "free",
        metadata: { [`k${c}`]: "v" },
      });
      await expectRefusedAndUnchanged("PATCH", "/tenants/newco", { name: `x${c}` });
      await expectRefusedAndUnchanged("PATCH", "/tenants/newco", { metadata: { region: `eu${c}` } });
      await expectRefusedAndUnchanged("POST", "/tenants/newco/keys", { id: `key${c}` });
      await expectRefusedAndUnchanged("PATCH", "/tenants/newco", {
        quota: { limit: 10, period: "day", timezone: `UTC${c}` },
      });
      await expectRefusedAndUnchanged("PATCH", "/tenants/newco", { rules: [{ allow: `GET /v1/${c}**` }] });
    }
  });

  test("control characters in path ids are refused", async () => {
    for (const path of ["/tenants/a%00b", "/tenants/a%0d%0ab", "/keys/k%1b/rotate", "/tenants/x%7f/keys"]) {
      const method = path.endsWith("/rotate") || path.endsWith("/keys") ? "POST" : "PATCH";
      const before = dumpState(f);
      const r = await f.call(method, path, { body: method === "PATCH" ? { name: "n" } : {} });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.headers.get("content-type")).toStartWith("application/problem+json");
      expect(dumpState(f)).toBe(before);
    }
  });

  test("huge strings and collections are refused", async () => {
    const huge = "a".repeat(10_000);
    await expectRefusedAndUnchanged("POST", "/tenants", { id: huge, plan: "free" });
    await expectRefusedAndUnchanged("POST", "/tenants", { id: "big", plan: "free", name: huge });
    await expectRefusedAndUnchanged("POST", "/tenants", { id: "big", plan: "free", metadata: { k: huge } });
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"]));
    await expectRefusedAndUnchanged("POST", "/tenants", { id: "big", plan: "free", metadata: many });
    await expectRefusedAndUnchanged("POST", "/tenants/newco/keys", { id: huge });
    await expectRefusedAndUnchanged("POST", `/keys/${apiKeyId}/rotate`, {
      gracePeriod: `${"9".repeat(400)}h`,
    });
  });

  test("deeply nested bodies are a 400 on every route, with or without a body schema", async () => {
    // 100 000 levels fit well within the 256 KiB body limit.
    const arrays = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    const objects = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
    const routes = [
      ...bodyRoutes().map(({ method, path }) => [method, path] as const),
      ["DELETE", "/tenants/newco"],
      ["POST", "/config/reload"],
    ] as const;
    for (const [method, path] of routes) {
      for (const raw of [
        arrays(100_000),
        objects(40_000),
        `{"id":"deep","plan":"free","metadata":{"k":${arrays(100_000)}}}`,
      ]) {
        const before = dumpState(f);
        const r = await f.call(method, path, { raw });
        expect(expectProblem(r, 400).detail, `${method} ${path}`).toContain("nested too deeply");
        expect(dumpState(f)).toBe(before);
      }
    }
    // The bound sits far above any shape the API accepts: 32 levels are judged by the schema.
    const r = await f.call("POST", "/tenants", { raw: arrays(32) });
    expect(expectProblem(r, 400).detail).not.toContain("nested too deeply");
  });

  test("a body over the admin limit is refused before it is read", async () => {
    const before = dumpState(f);
    const r = await f.call("POST", "/tenants", {
      raw: JSON.stringify({ id: "x", plan: "free", name: "a".repeat(300_000) }),
    });
    expectProblem(r, 413);
    expect(dumpState(f)).toBe(before);
  });

  test("wrong types, bad JSON and form bodies are refused", async () => {
    await expectRefusedAndUnchanged("POST", "/tenants", { id: "t", plan: "free", disabled: "yes" });
    await expectRefusedAndUnchanged("POST", "/tenants", { id: 42, plan: "free" });
    await expectRefusedAndUnchanged("POST", "/tenants", ["id", "plan"]);
    await expectRefusedAndUnchanged("POST", "/tenants", null);
    await expectRefusedAndUnchanged("PATCH", "/tenants/newco", {});
    await expectRefusedAndUnchanged("PATCH", `/keys/${apiKeyId}`, { expiresAt: "tomorrow" });
    await expectRefusedAndUnchanged("POST", `/keys/${apiKeyId}/rotate`, { gracePeriod: "1 hour" });
    const before = dumpState(f);
    expectProblem(await f.call("POST", "/tenants", { raw: '{"id":"t",' }), 400);
    expectProblem(
      await f.call("POST", "/tenants", {
        raw: "id=t&plan=free",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
      415,
    );
    expect(dumpState(f)).toBe(before);
  });

  test("errors name the field, never echo the value sent", async () => {
    const secret = "ghk_Sup3rS3cretValueThatMustNeverBeEchoed00";
    const r = await f.call("POST", "/tenants/newco/keys", { body: { secret } });
    const problem = expectProblem(r, 400);
    expect(problem.detail).toContain("secret");
    expect(r.text).not.toContain(secret);
    const r2 = await f.call("PATCH", "/tenants/newco", { body: { name: 12345678901 } });
    expectProblem(r2, 400);
    expect(r2.text).not.toContain("12345678901");
  });
});

describe("query parameters", () => {
  const lists = () => ["/tenants", "/tenants/newco/keys", "/audit"];

  test("unknown query parameters are refused", async () => {
    for (const path of lists()) {
      for (const q of ["evil=1", "limit=5&source=file", "tenant=acme", "__proto__=1"]) {
        expectProblem(await f.call("GET", `${path}?${q}`), 400);
      }
    }
  });

  test("limit must be a whole number in 1..200, cursor an issued one", async () => {
    for (const path of lists()) {
      for (const q of ["limit=0", "limit=-1", "limit=201", "limit=abc", "limit=1e9", "limit=2.5"]) {
        expectProblem(await f.call("GET", `${path}?${q}`), 400);
      }
      for (const cursor of ["%00", "a%0Ab", "a".repeat(300), "' OR 1=1 --"]) {
        expectProblem(await f.call("GET", `${path}?cursor=${encodeURIComponent(cursor)}`), 400);
      }
      expect((await f.call("GET", `${path}?limit=1`)).status).toBe(200);
    }
  });

  test("audit filters are checked too", async () => {
    expectProblem(await f.call("GET", "/audit?objectType=users"), 400);
    expectProblem(await f.call("GET", `/audit?objectId=${encodeURIComponent("a\nb")}`), 400);
    expect((await f.call("GET", "/audit?objectType=tenant&objectId=newco")).status).toBe(200);
  });
});

describe("validation errors in plain words", () => {
  /** Each refusal's exact detail: the field and what it takes, never a schema's internals or a regex. */
  const cases: [string, string, unknown, string][] = [
    [
      "POST",
      "/tenants",
      { id: "bad id!", plan: "free" },
      "The request body is invalid: id must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
    ],
    ["POST", "/tenants", { id: "ok" }, "The request body is invalid: plan is required."],
    [
      "POST",
      "/tenants",
      { id: "ok", plan: "free", quota: { limit: 5, period: "week" } },
      "The request body is invalid: quota.period must be one of hour, day, month.",
    ],
    [
      "POST",
      "/tenants",
      { id: "ok", plan: "free", limits: [{ limit: 5, window: "5 sec" }] },
      "The request body is invalid: limits[0].window must be a whole number and a unit: ms, s, m, h or d (e.g. 500ms, 10s, 1m).",
    ],
    [
      "POST",
      "/tenants",
      { id: "ok", plan: "free", rules: [{ permit: "GET /v1/**" }] },
      "The request body is invalid: rules[0] must be an object with allow or an object with deny.",
    ],
    [
      "POST",
      "/tenants",
      { id: "ok", plan: "free", limts: [] },
      "The request body is invalid: limts is not allowed here (did you mean limits? allowed: id, name, plan, metadata, externalIds, upstreams, credentials, limits, rules, quota, concurrency, disabled).",
    ],
    [
      "POST",
      "/tenants",
      { id: "ok", plan: "free", metadata: { "a b": "v" } },
      `The request body is invalid: metadata has the name "a b", which is not allowed: names there must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.`,
    ],
    [
      "PATCH",
      "/tenants/newco",
      {},
      "The request body is invalid: the body must name at least one of name, plan, metadata, externalIds, upstreams, credentials, limits, rules, quota, concurrency, disabled.",
    ],
    [
      "PATCH",
      "/keys/newco-ci",
      { expiresAt: "tomorrow" },
      "The request body is invalid: expiresAt must be an RFC 3339 date-time (2026-01-01T00:00:00Z) or null.",
    ],
    [
      "POST",
      "/keys/newco-ci/rotate",
      { gracePeriod: 3600 },
      "The request body is invalid: gracePeriod must be a whole number and a unit: ms, s, m, h or d (e.g. 500ms, 10s, 1m).",
    ],
    [
      "POST",
      "/explain",
      { key: "newco-ci", method: "GET", path: "v1/items" },
      "The request body is invalid: path must be a path starting with / (at most 8192 characters).",
    ],
    [
      "GET",
      "/tenants?limit=abc",
      undefined,
      "The query parameter limit must be a whole number from 1 to 200.",
    ],
    [
      "GET",
      "/tenants?limit=500",
      undefined,
      "The query parameter limit must be a whole number from 1 to 200.",
    ],
    [
      "GET",
      "/tenants?evil=1",
      undefined,
      "The query parameter evil is not allowed here (allowed: limit, cursor).",
    ],
    [
      "GET",
      "/audit?objectType=users",
      undefined,
      "The query parameter objectType must be one of tenant, key, config, credential, vault.",
    ],
    [
      "GET",
      "/usage?groupBy=week",
      undefined,
      "The query parameter groupBy must be one of route, key, status, minute, hour, day, month.",
    ],
    ["GET", "/usage/export?format=xml", undefined, "The query parameter format must be one of csv, ndjson."],
    [
      "GET",
      "/tenants/bad%20id",
      undefined,
      "The path parameter id must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
    ],
  ];

  test("on bodies, queries and paths of several routes, each refusal says what is allowed", async () => {
    for (const [method, path, body, detail] of cases) {
      const p = expectProblem(await f.call(method, path, body === undefined ? {} : { body }), 400);
      expect(p.detail, `${method} ${path}`).toBe(detail);
    }
  });

  test("several problems are listed one by one", async () => {
    const p = expectProblem(await f.call("POST", "/tenants", { body: { id: "x y", plan: 5 } }), 400);
    expect(p.errors).toEqual([
      "id must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
      "plan must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    ]);
  });

  test("every pattern the API checks has words, so no refusal can quote a regular expression", async () => {
    const spec = (await f.call("GET", "/openapi.json")).json;
    const patterns = new Set<string>();
    JSON.stringify(spec, (key, value) => {
      if (key === "pattern" && typeof value === "string") patterns.add(value);
      if (key === "patternProperties" && value) for (const p of Object.keys(value)) patterns.add(p);
      return value;
    });
    expect(patterns.size).toBeGreaterThan(5);
    // Names in a response's free-form maps are not checked, so need no words.
    patterns.delete("^(.*)$");
    for (const p of patterns) expect(wordsForPattern(p), p).toBeString();
  });
});
