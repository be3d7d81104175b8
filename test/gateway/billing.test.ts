/**
 * Failures are not billed: a 502, a 504, an upstream 5xx or a body cut off costs nothing against
 * quotas and 0 in its usage row, unless the plan has `billFailures: true`. Rate limits count them
 * either way.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const T = Date.UTC(2030, 0, 1, 12);
let gw: TestGateway;

beforeAll(() => {
  gw = startTestGateway(
    `version: 1
upstreams:
  fine: { mock: { status: 200, body: "fine" } }
  broken: { mock: { status: 503, body: "down for maintenance" } }
  down: { mock: close }
  stuck: { mock: hang, timeout: 5s }
  dripping: { mock: stall, idleTimeout: 5s }
plans:
  standard:
    limits: [{ limit: 1000, window: 1h, name: hourly }]
    quota: { limit: 1000, period: day, name: daily }
    rules: [{ allow: "* /**" }]
  inclusive:
    limits: [{ limit: 1000, window: 1h, name: hourly }]
    quota: { limit: 1000, period: day, name: daily }
    rules: [{ allow: "* /**" }]
    billFailures: true
routes:
  - { match: "* /fine/**", upstream: fine, cost: 3 }
  - { match: "* /broken/**", upstream: broken, cost: 3 }
  - { match: "* /down/**", upstream: down, cost: 3 }
  - { match: "* /stuck/**", upstream: stuck, cost: 3 }
  - { match: "* /dripping/**", upstream: dripping, cost: 3 }
tenants:
  acme: { plan: standard, keys: [{ id: acme-key, secret: acme-secret-0001 }] }
  initech: { plan: inclusive, keys: [{ id: initech-key, secret: initech-secret-0001 }] }
`,
    { testClockStart: T },
  );
});
afterAll(() => gw.close());

const advance = (by: string) =>
  fetch(`${gw.adminUrl}/clock`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ advance: by }),
  });

/** Sends one request to each upstream; returns the statuses, and whether each body arrived whole. */
async function oneOfEach(secret: string) {
  const get = (path: string) => fetch(`${gw.dataUrl}${path}`, { headers: { "x-api-key": secret } });
  const out: string[] = [];
  for (const path of ["/fine/x", "/broken/x", "/down/x"]) {
    const res = await get(path);
    await res.arrayBuffer();
    out.push(`${path} ${res.status}`);
  }
  // These wait on the test clock: a 504 after the timeout, a body cut after the idle timeout.
  const stuck = get("/stuck/x");
  const dripping = await get("/dripping/x");
  const cut = dripping.text().then(
    () => "whole",
    () => "cut",
  );
  await advance("6s");
  out.push(`/stuck/x ${(await stuck).status}`, `/dripping/x ${dripping.status} ${await cut}`);
  return out;
}

async function state(keyId: string, tenant: string) {
  const e = (await (
    await fetch(`${gw.adminUrl}/explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: keyId, method: "GET", path: "/fine/x" }),
    })
  ).json()) as { limits: { name: string; used: number }[] };
  const q = new URLSearchParams({
    format: "ndjson",
    tenant,
    from: new Date(T - 3_600_000).toISOString(),
    to: new Date(T + 3_600_000).toISOString(),
  });
  const export_ = await (await fetch(`${gw.adminUrl}/usage/export?${q}`)).text();
  return {
    used: Object.fromEntries(e.limits.map((l) => [l.name, l.used])),
    rows: export_
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { path: string; status: number; cost_units: number })
      .map((r) => `${r.path} ${r.status} ${r.cost_units}`),
  };
}

const answers = ["/fine/x 200", "/broken/x 503", "/down/x 502", "/stuck/x 504", "/dripping/x 200 cut"];

test("by default failures cost nothing in quotas and usage rows; rate limits still count them", async () => {
  expect(await oneOfEach("acme-secret-0001")).toEqual(answers);
  const { used, rows } = await state("acme-key", "acme");
  expect(used).toEqual({ hourly: 15, daily: 3 });
  expect(rows.sort()).toEqual(
    ["/fine/x 200 3", "/broken/x 503 0", "/down/x 502 0", "/stuck/x 504 0", "/dripping/x 200 0"].sort(),
  );
});

test("a plan with billFailures: true bills them", async () => {
  expect(await oneOfEach("initech-secret-0001")).toEqual(answers);
  const { used, rows } = await state("initech-key", "initech");
  expect(used).toEqual({ hourly: 15, daily: 15 });
  expect(rows.sort()).toEqual(
    ["/fine/x 200 3", "/broken/x 503 3", "/down/x 502 3", "/stuck/x 504 3", "/dripping/x 200 3"].sort(),
  );
});
