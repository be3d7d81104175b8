/**
 * POST /explain judges a request as the data plane would, without counting it: its outcome equals
 * what the same request then gets, and it names where every rule and limit involved is declared.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { prng } from "../../src/lib/prng.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const START = Date.parse("2030-01-15T12:00:00Z");

const CONFIG = `version: 1
upstreams:
  echo: { mock: echo }
  held: { mock: hang, timeout: 30s }
plans:
  metered:
    limits: [{ limit: 3, window: 10s, name: burst }]
    quota: { limit: 8, period: day, name: daily }
    concurrency: 1
    rules:
      - allow: "* /v1/**"
      - deny: "DELETE /v1/admin/**"
routes:
  - { match: "* /v1/**", upstream: echo }
  - { match: "GET /v1/held/**", upstream: held }
tenants:
  acme:
    plan: metered
    keys:
      - { id: acme-dev, secret: demo-acme-0001 }
      - id: acme-ro
        secret: demo-acme-ro-01
        rules: [{ deny: "POST,PUT,PATCH,DELETE /v1/**" }]
`;

let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(CONFIG, { testClockStart: START });
});
afterAll(() => gw.close());

const admin = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  return { status: r.status, json: (await r.json()) as Record<string, any> };
};
const explain = async (body: Record<string, unknown>) => {
  const r = await admin("POST", "/explain", body);
  expect(r.status).toBe(200);
  return r.json;
};
const secrets: Record<string, string> = { "acme-dev": "demo-acme-0001", "acme-ro": "demo-acme-ro-01" };
const send = async (key: string, method: string, path: string) => {
  const r = await fetch(`${gw.dataUrl}${path}`, { method, headers: { "x-api-key": secrets[key] ?? key } });
  const text = await r.text();
  // Bun's fetch client drops the body of a TRACE answer (the raw-socket attack tests read it).
  const type =
    r.headers.get("content-type")?.startsWith("application/problem+json") && text
      ? (JSON.parse(text) as { type: string }).type
      : null;
  return { status: r.status, problem: type, retryAfter: r.headers.get("retry-after") };
};
const advance = (d: string) => admin("POST", "/clock", { advance: d });
const lineOf = (text: string) => CONFIG.split("\n").findIndex((l) => l.includes(text)) + 1;

describe("explain", () => {
  test("an admitted request: tenant, key, route, matching rules and every counter, with where each is declared", async () => {
    const e = await explain({ key: "acme-dev", method: "get", path: "/v1/items?x=1" });
    expect(e).toMatchObject({
      outcome: "forwarded",
      status: null,
      problem: null,
      refusedBy: null,
      request: { method: "GET", path: "/v1/items", query: "x=1" },
      tenant: { id: "acme", plan: "metered" },
      key: { id: "acme-dev" },
      route: {
        match: "* /v1/**",
        declaredAt: "routes[0]",
        source: `gateway.yaml:${lineOf('match: "* /v1/**"')}`,
      },
      rules: [{ effect: "allow", pattern: "* /v1/**", declaredAt: "plans.metered.rules[0]" }],
      concurrency: { limit: 1, inFlight: 0, refuses: false },
    });
    expect(e.rules[0].source).toBe(`gateway.yaml:${lineOf('- allow: "* /v1/**"')}`);
    expect(e.limits).toEqual([
      expect.objectContaining({ kind: "window", name: "burst", used: 0, adds: 1, refuses: false, limit: 3 }),
      expect.objectContaining({ kind: "quota", name: "daily", used: 0, adds: 1, refuses: false, per: "day" }),
    ]);
    expect(e.limits[0].source).toBe(`gateway.yaml:${lineOf("limits: [{ limit: 3")}`);
  });

  test("explaining counts nothing", async () => {
    for (let i = 0; i < 5; i++) await explain({ key: "acme-dev", method: "GET", path: "/v1/items" });
    const e = await explain({ key: "acme-dev", method: "GET", path: "/v1/items" });
    expect(e.limits.map((l: { used: number }) => l.used)).toEqual([0, 0]);
  });

  test("each refusal names its step, status and problem type, as the request then gets", async () => {
    const cases: [string, string, string, string, number][] = [
      ["acme-dev", "DELETE", "/v1/admin/x", "rules", 403],
      ["acme-dev", "DELETE", "/v1/ADMIN/x", "rules", 403],
      ["acme-ro", "POST", "/v1/items", "rules", 403],
      ["acme-dev", "GET", "/v2/items", "route", 404],
      ["acme-dev", "GET", "/v1/a%2Fb", "path", 400],
      ["acme-dev", "TRACE", "/v1/items", "method", 405],
    ];
    for (const [key, method, path, stage, status] of cases) {
      const e = await explain({ key, method, path });
      const real = await send(key, method, path);
      expect([e.refusedBy, e.status]).toEqual([stage, status]);
      expect(e.status).toBe(real.status);
      if (method !== "TRACE") expect(e.problem).toBe(real.problem);
    }
    const ro = await explain({ key: "acme-ro", method: "POST", path: "/v1/items" });
    expect(ro.rules).toContainEqual(
      expect.objectContaining({ effect: "deny", declaredAt: "tenants.acme.keys[acme-ro].rules[0]" }),
    );
    expect(ro.rules.at(-1).source).toBe(`gateway.yaml:${lineOf('rules: [{ deny: "POST')}`);
  });

  test("a refused credential is 401 for the client; explain says why", async () => {
    const created = await admin("POST", "/tenants/acme/keys", { id: "acme-tmp" });
    expect(created.status).toBe(201);
    await admin("PATCH", "/keys/acme-tmp", { disabled: true });
    const e = await explain({ key: "acme-tmp", method: "GET", path: "/v1/items" });
    expect(e).toMatchObject({ refusedBy: "auth", status: 401, detail: "The key is disabled." });
    expect((await send(created.json.secret, "GET", "/v1/items")).status).toBe(401);
    expect((await admin("POST", "/explain", { key: "nobody", method: "GET", path: "/" })).status).toBe(404);
    expect((await admin("POST", "/explain", { method: "GET", path: "/" })).status).toBe(400);
  });

  test("a tenant is explained as a new key of its own", async () => {
    const e = await explain({ tenant: "acme", method: "GET", path: "/v1/items" });
    expect(e).toMatchObject({ outcome: "forwarded", tenant: { id: "acme" }, key: null });
  });

  test("the concurrency cap: a request holding the slot makes the next one refused, in explain and for real", async () => {
    const held = fetch(`${gw.dataUrl}/v1/held/x`, { headers: { "x-api-key": secrets["acme-dev"]! } });
    for (let i = 0; gw.testClock!.requestTimers === 0; i++) {
      if (i > 2000) throw new Error("the held request never started waiting");
      await Bun.sleep(1);
    }
    const e = await explain({ key: "acme-dev", method: "GET", path: "/v1/items" });
    expect(e).toMatchObject({
      refusedBy: "limits",
      status: 429,
      concurrency: { inFlight: 1, refuses: true },
    });
    expect((await send("acme-dev", "GET", "/v1/items")).problem).toBe(e.problem);
    await advance("30s");
    expect((await held).status).toBe(504);
  });
});

test("random traffic: explain's outcome, status, problem and Retry-After equal the real request's", async () => {
  const random = prng(20300115);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const keys = ["acme-dev", "acme-ro"];
  const methods = ["GET", "GET", "GET", "POST", "DELETE"];
  const paths = ["/v1/items", "/v1/admin/x", "/v1/Admin/y", "/v2/x", "/v1/a%2Fb", "/v1/items/%2e%2e/admin/z"];
  const clockSteps = ["0s", "0s", "1s", "3s", "10s", "1h"];
  for (let i = 0; i < 150; i++) {
    const [key, method, path] = [pick(keys), pick(methods), pick(paths)];
    const e = await explain({ key, method, path });
    const real = await send(key, method, path);
    const seen = { status: e.status ?? 200, problem: e.problem, retryAfter: retryAfterOf(e) };
    expect({ i, key, method, path, ...seen }).toEqual({ i, key, method, path, ...real });
    await advance(pick(clockSteps));
  }
});

/** The Retry-After a refusal by the limits carries: the longest wait among those that refuse. */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
function retryAfterOf(e: Record<string, any>): string | null {
  if (e.refusedBy !== "limits") return null;
  const waits = (e.limits as { refuses: boolean; retryAfter: number | null }[])
    .filter((l) => l.refuses && l.retryAfter !== null)
    .map((l) => l.retryAfter!);
  return waits.length ? String(Math.max(...waits)) : null;
}

describe("Gatehouse-Debug in test mode", () => {
  test("the answer carries a compact explanation; the upstream never sees the header", async () => {
    await advance("1d");
    const r = await fetch(`${gw.dataUrl}/v1/items`, {
      headers: { "x-api-key": secrets["acme-dev"]!, "gatehouse-debug": "1" },
    });
    const debug = r.headers.get("gatehouse-debug") ?? "";
    expect(debug).toStartWith("outcome=forwarded; ");
    expect(debug).toContain('tenant="acme"; key="acme-dev"; route="* /v1/**" routes[0]');
    expect(debug).toContain('window="burst" ');
    const echoed = (await r.json()) as { headers: Record<string, string> };
    expect(echoed.headers["gatehouse-debug"]).toBeUndefined();
    const plain = await fetch(`${gw.dataUrl}/v1/items`, { headers: { "x-api-key": secrets["acme-dev"]! } });
    expect(plain.headers.get("gatehouse-debug")).toBeNull();
  });
});
