/**
 * Shadow mode through the data plane: shadow rules, limits and quotas never refuse, and each request
 * they would have refused is recorded in its usage row, in /metrics and in explain.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const T = Date.UTC(2030, 0, 1, 12);
const config = (strict: string) => `version: 1
upstreams:
  echo: { mock: echo }
plans:
  watched:
    limits:
      - { limit: 2, window: 1m, name: strict${strict} }
      - { limit: 100, window: 1m, name: real }
    quota: { limit: 3, period: day, name: daily, mode: shadow }
    rules:
      - allow: "* /v1/**"
      - { deny: "* /v1/admin/**", mode: shadow }
      - { deny: "DELETE /v1/**" }
routes:
  - { match: "* /v1/**", upstream: echo }
tenants:
  acme: { plan: watched, keys: [{ id: acme-key, secret: acme-secret-0001 }] }
`;

let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(config(", mode: shadow"), { testClockStart: T });
});
afterAll(() => gw.close());

const send = async (path: string, method = "GET") => {
  const res = await fetch(`${gw.dataUrl}${path}`, { method, headers: { "x-api-key": "acme-secret-0001" } });
  await res.arrayBuffer();
  return res;
};

test("shadows never refuse; rows, metrics and explain record what they would have refused", async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await send("/v1/items")).status);
  const admin = await send("/v1/admin/users");
  statuses.push(admin.status, (await send("/v1/items", "DELETE")).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 403]);
  // Clients are told only of the limits in force.
  expect(admin.headers.get("ratelimit-policy")).toBe('"real";q=100;w=60');

  const q = new URLSearchParams({
    format: "ndjson",
    from: new Date(T - 60_000).toISOString(),
    to: new Date(T + 60_000).toISOString(),
  });
  const rows = (await (await fetch(`${gw.adminUrl}/usage/export?${q}`)).text())
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { path: string; status: number; would_refuse: string | null })
    .map((r) => [r.path, r.status, r.would_refuse]);
  expect(rows).toEqual([
    ["/v1/items", 200, null],
    ["/v1/items", 200, null],
    ["/v1/items", 200, "rate_limited"],
    ["/v1/items", 200, "rate_limited,quota_exhausted"],
    ["/v1/admin/users", 200, "forbidden,rate_limited,quota_exhausted"],
    // Refused for real by an enforced deny: no shadow got to judge it.
    ["/v1/items", 403, null],
  ]);

  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  expect(metrics).toContain('gatehouse_would_refuse_total{tenant="acme",code="would_refuse:forbidden"} 1');
  expect(metrics).toContain('gatehouse_would_refuse_total{tenant="acme",code="would_refuse:rate-limited"} 3');
  expect(metrics).toContain(
    'gatehouse_would_refuse_total{tenant="acme",code="would_refuse:quota-exhausted"} 2',
  );
  expect(metrics).toContain('gatehouse_refusals_total{tenant="acme",code="forbidden"} 1');
  expect(metrics).not.toContain('code="rate_limited"');

  const e = (await (
    await fetch(`${gw.adminUrl}/explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: "acme-key", method: "GET", path: "/v1/admin/users" }),
    })
  ).json()) as {
    outcome: string;
    wouldRefuse: string[];
    rules: { mode: string; pattern: string }[];
    limits: Record<string, unknown>[];
  };
  expect(e.outcome).toBe("forwarded");
  expect(e.wouldRefuse).toEqual(["forbidden", "rate_limited", "quota_exhausted"]);
  expect(e.rules.map((r) => `${r.mode} ${r.pattern}`)).toEqual(["enforce * /v1/**", "shadow * /v1/admin/**"]);
  // Each counts only what it would have admitted: 2 of the 5 requests, 3 for the quota.
  expect(e.limits.map((l) => [l.name, l.mode, l.used, l.refuses])).toEqual([
    ["strict", "shadow", 2, true],
    ["real", "enforce", 5, false],
    ["daily", "shadow", 3, true],
  ]);
});

test("switched to enforce, a limit carries on from its shadow count", async () => {
  writeFileSync(gw.configPath, config(""));
  const reload = await fetch(`${gw.adminUrl}/config/reload`, { method: "POST" });
  expect(reload.status).toBe(200);
  const res = await send("/v1/items");
  expect(res.status).toBe(429);
  expect(res.headers.get("ratelimit-policy")).toBe('"strict";q=2;w=60, "real";q=100;w=60');
});
