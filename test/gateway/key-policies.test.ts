/** Keys add their own rules and quota on top of their tenant's (DESIGN §1.2). */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
let gw: TestGateway;
const clock = new ManualClock(Date.parse("2026-04-01T09:00:00Z"));

beforeAll(() => {
  up = startUpstream();
  gw = startTestGateway(
    `version: 1
upstreams: { up: { url: "${up.url}" } }
plans:
  open:
    quota: { limit: 100, period: month }
    rules: [{ allow: "* /v1/**" }]
routes: [{ match: "* /v1/**", upstream: up }]
tenants:
  acme:
    plan: open
    keys:
      - { id: writer, secret: writer-secret-01 }
      - id: reader
        secret: reader-secret-01
        rules: [{ deny: "POST,PUT,PATCH,DELETE /v1/**" }]
      - id: trial
        secret: trial-secret-001
        quota: { limit: 2, period: day }
`,
    { clock },
  );
});
afterAll(async () => {
  await gw.close();
  await up.stop();
});

const call = (key: string, method = "GET") =>
  fetch(`${gw.dataUrl}/v1/items`, {
    method,
    headers: { "x-api-key": key },
    ...(method === "GET" ? {} : { body: "{}" }),
  });

test("a key's deny rule narrows what its tenant may do, for that key only", async () => {
  expect((await call("reader-secret-01")).status).toBe(200);
  expect((await call("reader-secret-01", "POST")).status).toBe(403);
  expect((await call("reader-secret-01", "DELETE")).status).toBe(403);
  expect((await call("writer-secret-01", "POST")).status).toBe(200);
});

test("a key's quota counts that key alone, beside the tenant's", async () => {
  const first = await call("trial-secret-001");
  expect(first.status).toBe(200);
  expect(first.headers.get("ratelimit-policy")).toBe(
    '"quota-month";q=100;w=2592000, "quota-day-by-key";q=2;w=86400',
  );
  expect((await call("trial-secret-001")).status).toBe(200);
  const refused = await call("trial-secret-001");
  expect(refused.status).toBe(429);
  expect(((await refused.json()) as { type: string }).type).toBe("urn:gatehouse:problem:quota-exhausted");
  // The tenant's other keys still have the tenant's quota left.
  expect((await call("writer-secret-01")).status).toBe(200);
  // The next day the key's quota starts over.
  clock.set(Date.parse("2026-04-02T00:00:00Z"));
  expect((await call("trial-secret-001")).status).toBe(200);
});

test("keys created through the control API carry their own rules", async () => {
  const res = await fetch(`${gw.adminUrl}/tenants/acme/keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ rules: [{ deny: "* /v1/items" }] }),
  });
  expect(res.status).toBe(201);
  const { secret, key } = (await res.json()) as { secret: string; key: { rules: unknown[] } };
  expect(key.rules).toEqual([{ deny: "* /v1/items" }]);
  expect((await call(secret)).status).toBe(403);
  expect((await fetch(`${gw.dataUrl}/v1/other`, { headers: { "x-api-key": secret } })).status).toBe(200);
});
