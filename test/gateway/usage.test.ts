/** Usage rows through the real data plane: one per request, refused ones included, durable on stop. */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/lib/clock.ts";
import { basicConfig, startTestGateway } from "../support/gateway.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
let dir: string;
beforeAll(() => {
  up = startUpstream();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-usage-"));
});
afterAll(async () => {
  await up.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("every request leaves one row, written by the time the gateway has stopped", async () => {
  const clock = new ManualClock(Date.parse("2026-05-05T10:00:00Z"));
  const db = join(dir, "usage.db");
  const gw = startTestGateway(basicConfig(up.url), { clock, db });
  const acme = { "x-api-key": "acme-secret-0001" };
  expect((await fetch(`${gw.dataUrl}/v1/items?api_key=leak&page=2`, { headers: acme })).status).toBe(200);
  expect((await fetch(`${gw.dataUrl}/v1/admin/x`, { headers: acme })).status).toBe(403);
  expect((await fetch(`${gw.dataUrl}/v1/items`, { headers: { "x-api-key": "wrong-key-000" } })).status).toBe(
    401,
  );
  expect(
    (await fetch(`${gw.dataUrl}/v1/items`, { headers: acme, method: "POST", body: "hello" })).status,
  ).toBe(200);

  const report = await fetch(`${gw.adminUrl}/usage?tenant=acme&groupBy=status`);
  expect(report.status).toBe(200);
  await gw.close().catch(() => {});

  const sqlite = new Database(db, { readonly: true });
  const rows = sqlite
    .query("select tenant_id, key_id, method, path, status, outcome, cost, bytes_in from usage order by id")
    .all() as Record<string, unknown>[];
  sqlite.close();
  expect(rows).toEqual([
    {
      tenant_id: "acme",
      key_id: "acme-key",
      method: "GET",
      path: "/v1/items",
      status: 200,
      outcome: "ok",
      cost: 1,
      bytes_in: 0,
    },
    {
      tenant_id: "acme",
      key_id: "acme-key",
      method: "GET",
      path: "/v1/admin/x",
      status: 403,
      outcome: "rejected:forbidden",
      cost: 0,
      bytes_in: 0,
    },
    {
      tenant_id: null,
      key_id: null,
      method: "GET",
      path: "/v1/items",
      status: 401,
      outcome: "rejected:unauthorized",
      cost: 0,
      bytes_in: 0,
    },
    {
      tenant_id: "acme",
      key_id: "acme-key",
      method: "POST",
      path: "/v1/items",
      status: 200,
      outcome: "ok",
      cost: 1,
      bytes_in: 5,
    },
  ]);
  expect(JSON.stringify(rows)).not.toContain("leak");
  expect(JSON.stringify(rows)).not.toContain("secret");
});
