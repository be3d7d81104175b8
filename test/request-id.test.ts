/**
 * Request ids on both listeners: a client's X-Request-Id is kept when it is a safe token (at most 64
 * characters of [A-Za-z0-9._-]) and replaced otherwise; the kept or generated id is the answer's
 * X-Request-Id, the problem's request_id, what the upstream receives and what the usage row holds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

const YAML = `version: 1
upstreams:
  echo: { mock: echo }
plans:
  open:
    rules: [{ allow: "* /v1/**" }]
routes:
  - { match: "* /v1/**", upstream: echo }
tenants:
  acme:
    plan: open
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
  globex:
    plan: open
    keys: [{ id: globex-key, secret: globex-secret-0001 }]
`;

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SAFE = ["order-42", "A.b_c-9", "x".repeat(64), "01J9ZQ4S8Y3V6K2M5N7P0R1T2W"];
const UNSAFE = ["", "has space", 'quote"d', "semi;colon", "a,b", "ünï", "x".repeat(65), "line\u00a0break"];

let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(YAML, { testClockStart: Date.parse("2026-03-01T00:00:00Z") });
});
afterAll(() => gw.close());

const data = (secret: string, requestId?: string) =>
  fetch(`${gw.dataUrl}/v1/items`, {
    headers: {
      authorization: `Bearer ${secret}`,
      ...(requestId !== undefined ? { "x-request-id": requestId } : {}),
    },
  });

const UNTIL = Date.parse("2027-01-01T00:00:00Z");

async function usageRows(): Promise<Record<string, string>[]> {
  const res = await fetch(`${gw.adminUrl}/usage/export?format=ndjson&from=0&to=${UNTIL}`);
  expect(res.status).toBe(200);
  const text = (await res.text()).trim();
  return text ? text.split("\n").map((line) => JSON.parse(line)) : [];
}

describe("data plane", () => {
  test("a safe X-Request-Id is kept: in the answer, upstream and in the usage row", async () => {
    for (const id of SAFE) {
      const res = await data("acme-secret-0001", id);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-request-id")).toBe(id);
      const echoed = (await res.json()) as { headers: Record<string, string> };
      expect(echoed.headers["x-request-id"]).toBe(id);
    }
    const rows = await usageRows();
    for (const id of SAFE)
      expect(rows.filter((r) => r.request_id === id).map((r) => r.tenant)).toEqual(["acme"]);
  });

  test("an unsafe one is replaced by a generated id, everywhere", async () => {
    for (const id of UNSAFE) {
      const res = await data("acme-secret-0001", id);
      const kept = res.headers.get("x-request-id")!;
      expect(kept).toMatch(UUID_V7);
      const echoed = (await res.json()) as { headers: Record<string, string> };
      expect(echoed.headers["x-request-id"]).toBe(kept);
    }
    // Two X-Request-Id headers arrive as one joined value: not a token, so replaced.
    const twice = new Headers({ authorization: "Bearer acme-secret-0001" });
    twice.append("x-request-id", "one");
    twice.append("x-request-id", "two");
    const res = await fetch(`${gw.dataUrl}/v1/items`, { headers: twice });
    expect(res.headers.get("x-request-id")).toMatch(UUID_V7);
    await res.arrayBuffer();
    const ids = new Set((await usageRows()).map((r) => r.request_id));
    for (const id of UNSAFE) expect(ids.has(id)).toBe(false);
  });

  test("a refusal's problem carries the kept id", async () => {
    const res = await data("not-a-key", "support-ticket-7");
    expect(res.status).toBe(401);
    expect(res.headers.get("x-request-id")).toBe("support-ticket-7");
    expect(((await res.json()) as { request_id: string }).request_id).toBe("support-ticket-7");
  });

  test("two tenants sending one id each keep their own usage row: the id is a label, never a key", async () => {
    for (const secret of ["acme-secret-0001", "globex-secret-0001", "acme-secret-0001"]) {
      await (await data(secret, "shared-id")).arrayBuffer();
    }
    const rows = (await usageRows()).filter((r) => r.request_id === "shared-id");
    expect(rows.map((r) => r.tenant).sort()).toEqual(["acme", "acme", "globex"]);
    const report = await fetch(`${gw.adminUrl}/usage?tenant=globex&groupBy=key&from=0&to=${UNTIL}`);
    expect(((await report.json()) as { total: { requests: number } }).total.requests).toBe(1);
  });
});

describe("control API", () => {
  const admin = (path: string, init: RequestInit = {}) => fetch(`${gw.adminUrl}${path}`, init);

  test("every answer carries X-Request-Id, and every problem the same id as request_id", async () => {
    const answers = [
      await admin("/healthz"),
      await admin("/tenants"),
      await admin("/tenants", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "rid-co", plan: "open" }),
      }),
      await admin("/tenants/rid-co", { method: "DELETE" }),
      await admin("/tenants/nope"),
      await admin("/tenants?limit=0"),
      await admin("/no/such/route"),
      await admin("/tenants", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }),
      await admin("/tenants", { headers: { host: "attacker.example" } }),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 201, 204, 404, 400, 404, 415, 421]);
    for (const r of answers) {
      const id = r.headers.get("x-request-id");
      expect(id).toMatch(UUID_V7);
      if (r.status >= 400) expect(((await r.json()) as { request_id: string }).request_id).toBe(id!);
    }
  });

  test("a safe client id is kept and an unsafe one replaced, as on the data plane", async () => {
    const kept = await admin("/tenants/nope", { headers: { "x-request-id": "deploy-2026.03.01" } });
    expect(kept.headers.get("x-request-id")).toBe("deploy-2026.03.01");
    expect(((await kept.json()) as { request_id: string }).request_id).toBe("deploy-2026.03.01");
    for (const id of UNSAFE) {
      const r = await admin("/config", { headers: { "x-request-id": id } });
      expect(r.headers.get("x-request-id")).toMatch(UUID_V7);
    }
  });
});
