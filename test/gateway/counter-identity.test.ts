/**
 * Counters belong to one incarnation of a tenant or key: an id used again after a delete starts
 * clean, in memory and after a restart (the persisted quota), whichever tenant it lands in.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/lib/clock.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const CONFIG = `version: 1
upstreams: { up: { mock: echo } }
plans:
  metered:
    limits: [{ limit: 2, window: 1m, by: key, name: burst }]
    quota: { limit: 2, period: day, by: key, name: daily }
    rules: [{ allow: "* /**" }]
  team:
    quota: { limit: 2, period: day, name: team }
    rules: [{ allow: "* /**" }]
routes: [{ match: "* /**", upstream: up }]
tenants:
  acme: { plan: metered }
  globex: { plan: metered }
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-identity-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function admin(gw: TestGateway, method: string, path: string, body?: unknown) {
  const res = await fetch(gw.adminUrl + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function newKey(gw: TestGateway, tenant: string, id: string): Promise<string> {
  const r = await admin(gw, "POST", `/tenants/${tenant}/keys`, { id });
  expect(r.status).toBe(201);
  return r.json.secret;
}

async function call(gw: TestGateway, secret: string) {
  const res = await fetch(`${gw.dataUrl}/v1/x`, { headers: { "x-api-key": secret } });
  await res.arrayBuffer();
  return { status: res.status, ratelimit: res.headers.get("ratelimit") };
}

describe("an id used again after a delete starts with clean counters", () => {
  test("a key id, in another tenant, in the same process", async () => {
    const gw = startTestGateway(CONFIG, { clock: new ManualClock(Date.parse("2026-03-10T08:00:00Z")) });
    try {
      const first = await newKey(gw, "acme", "ci");
      expect((await call(gw, first)).status).toBe(200);
      expect((await call(gw, first)).status).toBe(200);
      expect((await call(gw, first)).status).toBe(429);
      expect((await admin(gw, "DELETE", "/keys/ci")).status).toBe(204);

      const second = await newKey(gw, "globex", "ci");
      const r = await call(gw, second);
      expect(r.status).toBe(200);
      expect(r.ratelimit).toStartWith('"burst";r=1;');
      expect(r.ratelimit).toContain('"daily";r=1;');
    } finally {
      await gw.close();
    }
  });

  test("a tenant id, in the same process", async () => {
    const gw = startTestGateway(CONFIG, { clock: new ManualClock(Date.parse("2026-03-10T08:00:00Z")) });
    try {
      expect((await admin(gw, "POST", "/tenants", { id: "newco", plan: "team" })).status).toBe(201);
      const first = await newKey(gw, "newco", "newco-1");
      expect((await call(gw, first)).status).toBe(200);
      expect((await call(gw, first)).status).toBe(200);
      expect((await call(gw, first)).status).toBe(429);
      expect((await admin(gw, "DELETE", "/tenants/newco")).status).toBe(204);

      expect((await admin(gw, "POST", "/tenants", { id: "newco", plan: "team" })).status).toBe(201);
      const r = await call(gw, await newKey(gw, "newco", "newco-1"));
      expect(r.status).toBe(200);
      expect(r.ratelimit).toBe('"team";r=1;t=57600');
    } finally {
      await gw.close();
    }
  });

  test("a key id, after a restart: the persisted quota of the deleted key is not inherited", async () => {
    const clock = new ManualClock(Date.parse("2026-03-10T08:00:00Z"));
    const db = join(dir, "restart.db");
    let gw = startTestGateway(CONFIG, { clock, db });
    let first: string;
    try {
      first = await newKey(gw, "acme", "ci");
      expect((await call(gw, first)).status).toBe(200);
      expect((await call(gw, first)).status).toBe(200);
    } finally {
      await gw.close();
    }

    gw = startTestGateway(CONFIG, { clock, db });
    try {
      clock.advance(120_000); // past the sliding window: only the persisted quota still counts
      const exhausted = await call(gw, first);
      expect(exhausted.status).toBe(429);
      expect(exhausted.ratelimit).toContain('"daily";r=0;');
      expect((await admin(gw, "DELETE", "/keys/ci")).status).toBe(204);

      const r = await call(gw, await newKey(gw, "acme", "ci"));
      expect(r.status).toBe(200);
      expect(r.ratelimit).toContain('"daily";r=1;');
    } finally {
      await gw.close();
    }
  });
});
