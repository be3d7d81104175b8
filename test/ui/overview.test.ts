/** GET /ui/api/overview, the dashboard's first page: rates from the rollups, refusals, quota projection. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(
    `version: 1
server: { adminToken: ${TOKEN} }
upstreams: { sandbox: { mock: echo } }
plans:
  free:
    limits: [{ limit: 4, window: 1h }]
    quota: { limit: 1000, period: day }
    rules: [{ allow: "GET /v1/**" }]
routes: [{ match: "* /v1/**", upstream: sandbox }]
tenants:
  acme: { plan: free, keys: [{ id: acme-dev, secret: acme-secret-0001 }] }
  globex: { plan: free }
`,
    { testClockStart: Date.parse("2026-01-15T06:00:00Z") },
  );
});
afterAll(() => gw.close());

const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

test("each tenant's requests over the last five whole minutes, refusals by type, quota heading", async () => {
  const statuses: number[] = [];
  for (const path of ["/v1/a", "/v1/b", "/v1/c", "/v1/d", "/v1/e", "/v1/f"]) {
    const r = await fetch(`${gw.dataUrl}${path}`, { headers: { "x-api-key": "acme-secret-0001" } });
    statuses.push(r.status);
  }
  const denied = await fetch(`${gw.dataUrl}/v1/x`, {
    method: "POST",
    headers: { "x-api-key": "acme-secret-0001" },
  });
  expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  expect(denied.status).toBe(403);
  // The minute with the requests must be whole before it counts.
  expect((await admin("POST", "/clock", { advance: "1m" })).status).toBe(200);
  const overview = (await (await admin("GET", "/ui/api/overview")).json()) as {
    rateWindow: { from: string; to: string };
    tenants: {
      id: string;
      recent: { requests: number; errors: number; perSecond: number };
      refusals: Record<string, number>;
      quotas: { name: string; used: number; projected: number | null }[];
    }[];
  };
  expect(overview.rateWindow).toEqual({ from: "2026-01-15T05:56:00.000Z", to: "2026-01-15T06:01:00.000Z" });
  const [acme, globex] = overview.tenants;
  expect(acme!.id).toBe("acme");
  expect(acme!.recent).toEqual({ requests: 7, errors: 3, perSecond: 7 / 300 });
  expect(acme!.refusals).toEqual({ rate_limited: 2, forbidden: 1 });
  // 4 units used in the first 6h01m of the day: about 16 by its end at that pace.
  expect(acme!.quotas).toEqual([
    expect.objectContaining({ name: "quota-day", used: 4, projected: Math.round((4 * 24 * 60) / 361) }),
  ]);
  expect(globex!.recent.requests).toBe(0);
  expect(globex!.refusals).toEqual({});
});
