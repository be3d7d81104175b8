import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { StoreStatus } from "../../src/db/store-health.ts";
import { type AdminFixture, adminFixture, dumpState, expectProblem } from "./helpers.ts";

const readOnly: StoreStatus = {
  healthy: false,
  fault: "readonly",
  error: "SQLITE_READONLY: attempt to write a readonly database",
  since: 1_000,
  buffered: 1234,
  dropped: 5,
  retries: 3,
  waiting: 2,
};

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture();
});
afterEach(() => f.close());

describe("readiness", () => {
  test("ready while serving, 503 while draining", async () => {
    expect((await f.call("GET", "/readyz")).json).toEqual({ status: "ready" });
    f.setDraining(true);
    const r = await f.call("GET", "/readyz");
    expect(expectProblem(r, 503).detail).toContain("shutting down");
    expect(r.headers.get("retry-after")).toBe("5");
    expect((await f.call("GET", "/healthz", { token: null })).status).toBe(200);
  });

  test("degraded, still 200, when the database cannot be read: traffic is served from memory", async () => {
    f.database.sqlite.close();
    const r = await f.call("GET", "/readyz");
    expect(r.status).toBe(200);
    expect(r.json.status).toBe("degraded");
    expect(r.json.detail).toContain("database cannot be read");
  });

  test("degraded, still 200, naming the fault and what is buffered while the database refuses writes", async () => {
    f.setStore(readOnly);
    const r = await f.call("GET", "/readyz");
    expect(r.status).toBe(200);
    expect(r.json.status).toBe("degraded");
    expect(r.json.detail).toBe(
      "Usage rows cannot be written: the database is read-only (SQLITE_READONLY: attempt to write a " +
        "readonly database); 1234 rows buffered, 5 dropped, 2 quota counters and last-used times waiting. " +
        "Traffic is served meanwhile; the buffer is written once the database accepts writes again.",
    );
    f.setStore({ ...readOnly, healthy: true, fault: null, error: null, buffered: 0 });
    expect((await f.call("GET", "/readyz")).json).toEqual({ status: "ready" });
  });
});

describe("control-API writes while the database refuses them", () => {
  test("get a 503 problem and change nothing; reads still answer", async () => {
    f.setStore(readOnly);
    const before = dumpState(f);
    const r = await f.call("POST", "/tenants", { body: { id: "initech", plan: "free" } });
    expect(expectProblem(r, 503).type).toBe("urn:gatehouse:problem:store-unavailable");
    expect(r.json.detail).toContain("the database is read-only");
    expect(r.headers.get("retry-after")).toBe("5");
    expect((await f.call("DELETE", "/tenants/acme")).status).toBe(503);
    expect(dumpState(f)).toBe(before);
    expect((await f.call("GET", "/tenants/acme")).status).toBe(200);
    // A POST that only reads still answers.
    const explained = await f.call("POST", "/explain", {
      body: { key: "acme-dev", method: "GET", path: "/v1/x" },
    });
    expect(explained.status).toBe(200);
    expect(explained.json.outcome).toBe("forwarded");
    f.setStore({ ...readOnly, healthy: true, fault: null });
    expect((await f.call("POST", "/tenants", { body: { id: "initech", plan: "free" } })).status).toBe(201);
  });

  test("a store error the writer thread has not reported yet is a 503 too, not a 500", async () => {
    // SQLite itself refuses the write, as it would on a read-only file (drizzle wraps its error).
    f.database.sqlite.exec("PRAGMA query_only = 1");
    const before = dumpState(f);
    const r = await f.call("POST", "/tenants", { body: { id: "initech", plan: "free" } });
    expect(expectProblem(r, 503).detail).toBe(
      "The database refuses writes (SQLITE_READONLY); nothing was changed.",
    );
    expect(dumpState(f)).toBe(before);
  });
});

describe("GET /metrics", () => {
  test("serves per-tenant request, refusal and latency series in Prometheus text", async () => {
    expect(await f.data("gh_demo_acme_0001")).toBe(200);
    expect(await f.data("gh_demo_acme_0001", "/nowhere")).toBe(404);
    expect(await f.data("not-a-real-key-at-all")).toBe(401);
    const r = await f.call("GET", "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    expect(r.text).toContain('gatehouse_requests_total{tenant="acme",outcome="ok",status_class="2xx"} 1');
    expect(r.text).toContain(
      'gatehouse_requests_total{tenant="acme",outcome="rejected",status_class="4xx"} 1',
    );
    expect(r.text).toContain('gatehouse_refusals_total{tenant="acme",code="not-found"} 1');
    expect(r.text).toContain('gatehouse_refusals_total{tenant="_none",code="unauthorized"} 1');
    expect(r.text).toContain('gatehouse_request_duration_seconds_count{tenant="acme",outcome="ok"} 1');
    // Our own registry only: process metrics once, not again from prom-client's global default.
    expect(r.text.match(/^# TYPE process_cpu_seconds_total /gm)).toHaveLength(1);
  });
});

describe("the audit log", () => {
  test("records who, what, before and after, with secrets and hashes masked", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" }, ip: "192.0.2.1" });
    f.clock.advance(1000);
    await f.call("PATCH", "/tenants/newco", { body: { name: "New Co" }, ip: "192.0.2.2" });
    const key = (await f.call("POST", "/tenants/newco/keys", { body: { id: "k1" } })).json;
    await f.call("POST", "/keys/k1/rotate");

    const items = (await f.call("GET", "/audit")).json.items;
    const update = items.find((e: { action: string }) => e.action === "tenant.update");
    expect(update).toEqual(
      expect.objectContaining({
        actor: "admin@192.0.2.2",
        objectType: "tenant",
        objectId: "newco",
        at: "2026-01-01T00:00:01.000Z",
      }),
    );
    expect(update.before.name).toBe("newco");
    expect(update.after.name).toBe("New Co");
    const rotate = items.find((e: { action: string }) => e.action === "key.rotate");
    expect(rotate.before.hash).toBe("***");
    expect(rotate.after.hash).toBe("***");
    const text = JSON.stringify(items);
    expect(text).not.toContain(key.secret);
    expect(text).not.toContain("sha256:");
    // The config sync at start-up is in the same log.
    expect(items.at(-1).action).toBe("config.sync");
  });

  test("is append-only and pages newest first", async () => {
    for (const id of ["a1", "a2", "a3"]) await f.call("POST", "/tenants", { body: { id, plan: "free" } });
    const first = (await f.call("GET", "/audit?limit=2")).json;
    expect(first.items.map((e: { objectId: string }) => e.objectId)).toEqual(["a3", "a2"]);
    const second = (await f.call("GET", `/audit?limit=2&cursor=${first.nextCursor}`)).json;
    expect(second.items[0].objectId).toBe("a1");
    const routes = f.app.routes.filter((r) => r.path.startsWith("/audit"));
    expect(routes.map((r) => r.method)).toEqual(["GET"]);
  });

  test("a refused change leaves no entry", async () => {
    const count = () => f.database.sqlite.query("SELECT COUNT(*) AS n FROM audit_log").get();
    const before = count();
    await f.call("POST", "/tenants", { body: { id: "x", plan: "gold" } });
    await f.call("PATCH", "/tenants/acme", { body: { name: "y" } });
    expect(count()).toEqual(before);
  });
});
