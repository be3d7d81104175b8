import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type AdminFixture, adminFixture, dumpState, expectProblem } from "./helpers.ts";

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture();
});
afterEach(() => f.close());

async function newKey(tenant: string) {
  const r = await f.call("POST", `/tenants/${tenant}/keys`);
  expect(r.status).toBe(201);
  return r.json.secret as string;
}

describe("tenants", () => {
  test("create, get, list, change and delete a tenant", async () => {
    const created = await f.call("POST", "/tenants", {
      body: { id: "newco", plan: "free", name: "New Co", metadata: { region: "us" } },
    });
    expect(created.status).toBe(201);
    expect(created.json).toEqual(
      expect.objectContaining({
        id: "newco",
        name: "New Co",
        plan: "free",
        metadata: { region: "us" },
        source: "api",
        sourceRef: null,
        disabled: false,
        createdAt: "2026-01-01T00:00:00.000Z",
      }),
    );
    expect((await f.call("GET", "/tenants/newco")).json).toEqual(created.json);

    f.clock.advance(5000);
    const changed = await f.call("PATCH", "/tenants/newco", {
      body: { plan: "premium", limits: [{ limit: 5, window: "1s" }], quota: { limit: 100, period: "day" } },
    });
    expect(changed.status).toBe(200);
    expect(changed.json).toEqual(
      expect.objectContaining({
        plan: "premium",
        name: "New Co",
        limits: [{ limit: 5, window: "1s" }],
        quota: { limit: 100, period: "day" },
        updatedAt: "2026-01-01T00:00:05.000Z",
      }),
    );
    // The data plane sees the new policies at once.
    const view = f.state.snapshot.tenants.get("newco")!;
    expect(view.plan).toBe("premium");
    expect(view.limits.map((l) => l.limit)).toEqual([5]);
    expect(view.quotas.map((q) => q.limit)).toEqual([100]);

    const cleared = await f.call("PATCH", "/tenants/newco", { body: { quota: null } });
    expect(cleared.json.quota).toBeNull();
    expect(f.state.snapshot.tenants.get("newco")!.quotas).toEqual([]);

    const del = await f.call("DELETE", "/tenants/newco");
    expect(del.status).toBe(204);
    expect(f.state.snapshot.tenants.has("newco")).toBe(false);
    expectProblem(await f.call("GET", "/tenants/newco"), 404);
    expectProblem(await f.call("DELETE", "/tenants/newco"), 404);
  });

  test("ids are unique", async () => {
    expect((await f.call("POST", "/tenants", { body: { id: "dup", plan: "free" } })).status).toBe(201);
    const before = dumpState(f);
    expectProblem(await f.call("POST", "/tenants", { body: { id: "dup", plan: "premium" } }), 409);
    expectProblem(await f.call("POST", "/tenants", { body: { id: "acme", plan: "free" } }), 409);
    expect(dumpState(f)).toBe(before);
  });

  test("lists page by limit and cursor, in id order", async () => {
    for (const id of ["t1", "t2", "t3", "t4", "t5"]) {
      expect((await f.call("POST", "/tenants", { body: { id, plan: "free" } })).status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await f.call("GET", `/tenants?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(r.status).toBe(200);
      expect(r.json.items.length).toBeLessThanOrEqual(3);
      seen.push(...r.json.items.map((t: { id: string }) => t.id));
      for (const t of r.json.items) expect(t.keys).toBe(["acme", "globex"].includes(t.id) ? 1 : 0);
      cursor = r.json.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(["acme", "globex", "t1", "t2", "t3", "t4", "t5"]);
  });

  test("plans and upstreams must exist in the running config; the error names the valid ones", async () => {
    const before = dumpState(f);
    const plan = expectProblem(await f.call("POST", "/tenants", { body: { id: "x", plan: "gold" } }), 400);
    expect(plan.detail).toContain('"gold"');
    expect(plan.detail).toContain("free, premium");
    const up = expectProblem(
      await f.call("POST", "/tenants", {
        body: { id: "x", plan: "free", upstreams: { sandbox: "nowhere" } },
      }),
      400,
    );
    expect(up.detail).toContain('"nowhere"');
    expect(up.detail).toContain("sandbox, sandbox-eu");
    expect(dumpState(f)).toBe(before);
  });

  test("policies are checked as `validate` would: patterns, time zones, limit names", async () => {
    await f.call("POST", "/tenants", { body: { id: "x", plan: "free" } });
    const before = dumpState(f);
    const tz = expectProblem(
      await f.call("PATCH", "/tenants/x", {
        body: { quota: { limit: 1, period: "day", timezone: "Mars/Base" } },
      }),
      400,
    );
    expect(tz.detail).toContain("Mars/Base");
    const pat = expectProblem(
      await f.call("PATCH", "/tenants/x", { body: { rules: [{ allow: "GET /v1/**/x" }] } }),
      400,
    );
    expect(pat.detail).toContain("rules[0]");
    // The plan already has a limit named 1000-per-1s.
    expectProblem(
      await f.call("PATCH", "/tenants/x", { body: { limits: [{ limit: 1000, window: "1s" }] } }),
      400,
    );
    expect(dumpState(f)).toBe(before);
  });

  test("a typo that would weaken a policy is refused as `validate` refuses it, for tenants and keys", async () => {
    await f.call("POST", "/tenants", { body: { id: "x", plan: "free" } });
    const before = dumpState(f);
    const refused = async (method: string, path: string, body: unknown) =>
      expectProblem(await f.call(method, path, { body }), 400).detail;

    const deny = await refused("POST", "/tenants", {
      id: "y",
      plan: "premium",
      rules: [{ deny: "DELTE /v1/admin/**" }],
    });
    expect(deny).toContain('"DELTE" is not an HTTP method');
    expect(deny).toContain('did you mean "DELETE"?');
    expect(await refused("PATCH", "/tenants/x", { rules: [{ deny: "delete /v1/**" }] })).toContain(
      "methods are upper case: write DELETE",
    );
    expect(await refused("POST", "/tenants/x/keys", { rules: [{ deny: "DELTE /v1/**" }] })).toContain(
      '"DELTE" is not an HTTP method',
    );
    expect(await refused("PATCH", "/tenants/x", { rules: [{ deny: "TRACE /v1/**" }] })).toContain(
      "never forwards TRACE",
    );
    expect(await refused("PATCH", "/tenants/x", { limits: [{ limit: 5, window: "0s" }] })).toContain(
      "must be longer than 0",
    );
    expect(await refused("PATCH", "/tenants/x", { quota: { limit: 5, period: "day", anchor: 3 } })).toContain(
      "anchor applies to monthly quotas only",
    );
    expect(
      await refused("POST", "/tenants/x/keys", { limits: [{ limit: 5, window: "1s", by: "tenant" }] }),
    ).toContain("a key's limits and quota always count that key alone");
    expect(dumpState(f)).toBe(before);
  });

  test("per-tenant routing through an upstream override reaches the data plane", async () => {
    await f.call("POST", "/tenants", {
      body: { id: "eu", plan: "premium", upstreams: { sandbox: "sandbox-eu" } },
    });
    const secret = await newKey("eu");
    expect(f.state.snapshot.tenants.get("eu")!.upstreams.get("sandbox")).toBe("sandbox-eu");
    expect(await f.data(secret)).toBe(200);
  });

  test("a plan change, a disable and a delete reach the data plane on the next request", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "premium" } });
    const secret = await newKey("newco");
    expect(await f.data(secret, "/v1/reports", "POST")).toBe(200);

    await f.call("PATCH", "/tenants/newco", { body: { plan: "free" } });
    expect(await f.data(secret, "/v1/reports", "POST")).toBe(403);
    expect(await f.data(secret)).toBe(200);

    expect((await f.call("PATCH", "/tenants/newco", { body: { disabled: true } })).json.disabled).toBe(true);
    expect(await f.data(secret)).toBe(401);
    await f.call("PATCH", "/tenants/newco", { body: { disabled: false } });
    expect(await f.data(secret)).toBe(200);

    await f.call("DELETE", "/tenants/newco");
    expect(await f.data(secret)).toBe(401);
    // Its keys went with it.
    expect(
      f.database.sqlite.query("SELECT COUNT(*) AS n FROM api_keys WHERE tenant_id = 'newco'").get(),
    ).toEqual({
      n: 0,
    });
  });

  test("tenants from the config file are read-only: 409 names the file and line", async () => {
    const before = dumpState(f);
    for (const [method, body] of [
      ["PATCH", { name: "Hijacked" }],
      ["PATCH", { disabled: true }],
      ["DELETE", undefined],
    ] as const) {
      const p = expectProblem(await f.call(method, "/tenants/acme", { body }), 409);
      expect(p.detail).toContain("gateway.yaml:19");
      expect(p.detail).toContain("change it there");
    }
    expect(dumpState(f)).toBe(before);
    expect(await f.data("gh_demo_acme_0001")).toBe(200);
  });

  test("tenants created here survive a config reload", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } });
    const secret = await newKey("newco");
    f.writeConfig(`${readFileSync(f.configPath, "utf8")}  initech:\n    plan: free\n`);
    const reload = await f.call("POST", "/config/reload");
    expect(reload.status).toBe(200);
    expect(reload.json.changed).toBe(true);
    expect((await f.call("GET", "/tenants/newco")).status).toBe(200);
    expect((await f.call("GET", "/tenants/initech")).json.source).toBe("file");
    expect(await f.data(secret)).toBe(200);
  });
});
