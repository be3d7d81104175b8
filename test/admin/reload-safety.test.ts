/**
 * A reload never deletes or silently takes over what the control API made: every such file is
 * refused with located errors, and the API objects keep working. The file adopts an API object only
 * when it declares it exactly as `gatehouse export` prints it.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { ConfigError } from "../../src/config/errors.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { apiKeys, tenants } from "../../src/db/schema.ts";
import { GatewayState } from "../../src/gateway/state.ts";
import { type AdminFixture, adminFixture, BASE_YAML, dumpState, expectProblem } from "./helpers.ts";

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture();
});
afterEach(() => f.close());

const WITHOUT_ACME = BASE_YAML.replace(/ {2}acme:\n(.*\n){5}/, "");

async function newKey(tenant: string, body: Record<string, unknown> = {}): Promise<string> {
  const r = await f.call("POST", `/tenants/${tenant}/keys`, { body });
  expect(r.status).toBe(201);
  return r.json.secret as string;
}

/** Writes the file, reloads, and returns the located errors of the refusal. */
async function refusedReload(yaml: string): Promise<string[]> {
  f.writeConfig(yaml);
  const version = f.state.snapshot.version;
  const before = dumpState(f);
  const p = expectProblem(await f.call("POST", "/config/reload"), 422);
  expect(f.state.snapshot.version).toBe(version);
  // Nothing was written but the audit entry of the failed reload.
  expect(JSON.parse(dumpState(f)).tenants).toEqual(JSON.parse(before).tenants);
  expect(JSON.parse(dumpState(f)).keys).toEqual(JSON.parse(before).keys);
  return p.errors!;
}

const uidOf = (table: typeof tenants | typeof apiKeys, id: string) =>
  f.database.db.select({ uid: table.uid }).from(table).where(eq(table.id, id)).get()?.uid;

describe("a reload that would delete API-made keys", () => {
  test("is refused, located at tenants:, naming the keys and the fix; the keys keep working", async () => {
    const secret = await newKey("acme", { id: "acme-ci" });
    const errors = await refusedReload(WITHOUT_ACME);
    expect(errors).toEqual([
      `${f.configPath}:18:1 tenants: tenant "acme" is no longer declared, but keys created through the ` +
        'control API belong to it ("acme-ci"), and a reload never deletes those; revoke them first ' +
        "(DELETE /keys/{id}), or keep declaring the tenant",
    ]);
    expect(await f.data(secret)).toBe(200);
    expect(await f.data("gh_demo_acme_0001")).toBe(200);
  });

  test("restoring the file afterwards leaves everything as it was", async () => {
    const secret = await newKey("acme", { id: "acme-ci" });
    f.writeConfig(WITHOUT_ACME);
    await f.call("POST", "/config/reload");
    f.writeConfig(BASE_YAML);
    expect((await f.call("POST", "/config/reload")).status).toBe(200);
    expect(await f.data(secret)).toBe(200);
    expect((await f.call("GET", "/keys/acme-ci")).json).toMatchObject({ tenantId: "acme", source: "api" });
  });

  test("the start-up sync refuses it too, and writes nothing", async () => {
    await newKey("acme", { id: "acme-ci" });
    f.writeConfig(WITHOUT_ACME);
    const before = dumpState(f);
    let error: unknown;
    try {
      new GatewayState(f.configPath, f.database, f.clock, {}, loadConfigFile(f.configPath, {}));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => [i.line, i.col, i.path])).toEqual([[18, 1, "tenants"]]);
    expect((error as ConfigError).message).toContain('("acme-ci")');
    expect(dumpState(f)).toBe(before);
  });

  test("once revoked through the API, the tenant can go", async () => {
    await newKey("acme", { id: "acme-ci" });
    expect((await f.call("DELETE", "/keys/acme-ci")).status).toBe(204);
    f.writeConfig(WITHOUT_ACME);
    expect((await f.call("POST", "/config/reload")).status).toBe(200);
    expectProblem(await f.call("GET", "/tenants/acme"), 404);
  });
});

describe("a file that collides with API-made objects", () => {
  test("a file key with an API key's secret is refused at that secret; the API key stays as it was", async () => {
    const secret = await newKey("acme", { id: "acme-ci" });
    const errors = await refusedReload(`${BASE_YAML}      - { id: globex-2, secret: "${secret}" }\n`);
    expect(errors).toEqual([
      `${f.configPath}:30:33 tenants.globex.keys[1].secret: this is also the secret of key "acme-ci" of ` +
        'tenant "acme", created through the control API; give this key its own secret, or revoke that key ' +
        "first (DELETE /keys/acme-ci)",
    ]);
    expect(await f.data(secret)).toBe(200);
    expect(f.state.snapshot.keysByHash.size).toBe(3);
    expect((await f.call("GET", "/keys/acme-ci")).json).toMatchObject({ tenantId: "acme", source: "api" });
  });

  test("so is one with a rotated-out secret still in its grace period", async () => {
    const old = await newKey("acme", { id: "acme-ci" });
    expect((await f.call("POST", "/keys/acme-ci/rotate", { body: { gracePeriod: "1h" } })).status).toBe(200);
    const errors = await refusedReload(`${BASE_YAML}      - { id: globex-2, secret: "${old}" }\n`);
    expect(errors[0]).toContain("keys[1].secret: this is also the previous secret (replaced by a rotation)");
    expect(await f.data(old)).toBe(200);
  });

  test("a file key with an API key's id but another declaration is refused at the id", async () => {
    const secret = await newKey("acme", { id: "acme-ci" });
    const errors = await refusedReload(`${BASE_YAML}      - { id: acme-ci, secret: another-secret-1 }\n`);
    expect(errors).toEqual([
      `${f.configPath}:30:15 tenants.globex.keys[1].id: key "acme-ci" was created through the control API ` +
        'for tenant "acme", and this declaration differs from it in tenant, secret; the file takes over an ' +
        "API-made key only when it declares it exactly as `gatehouse export` prints it, under its tenant. " +
        "Declare it so, give this key another id, or revoke the API key first (DELETE /keys/acme-ci)",
    ]);
    expect(await f.data(secret)).toBe(200);
    expect(await f.data("another-secret-1")).toBe(401);
  });

  test("a file tenant with an API tenant's id but another declaration is refused at the tenant", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } });
    const secret = await newKey("newco");
    const errors = await refusedReload(`${BASE_YAML}  newco:\n    plan: premium\n`);
    expect(errors).toEqual([
      `${f.configPath}:30:3 tenants.newco: tenant "newco" was created through the control API, and this ` +
        "declaration differs from it in plan; the file takes over an API-made tenant only when it declares " +
        "it exactly as `gatehouse export` prints it. Declare it so, give this tenant another id, or delete " +
        "the API tenant first (DELETE /tenants/newco)",
    ]);
    expect((await f.call("GET", "/tenants/newco")).json).toMatchObject({ plan: "free", source: "api" });
    expect(await f.data(secret)).toBe(200);
  });
});

describe("adoption: the file declares an API object exactly as export prints it", () => {
  test("the tenant and key become file-owned and keep their incarnations (and so their counters)", async () => {
    await f.call("POST", "/tenants", {
      body: { id: "newco", plan: "free", limits: [{ limit: 5, window: "1s" }] },
    });
    const secret = await newKey("newco", { id: "newco-a", name: "CI", metadata: { team: "platform" } });
    const tenantUid = uidOf(tenants, "newco");
    const keyUid = uidOf(apiKeys, "newco-a");
    // Pasted under tenants: as the export's own comment says.
    const exported = (await f.call("GET", "/export")).text.split("tenants:\n")[1]!;
    f.writeConfig(BASE_YAML + exported);
    const r = await f.call("POST", "/config/reload");
    expect(r.json).toEqual({ version: expect.any(Number), changed: true });
    expect((await f.call("GET", "/tenants/newco")).json.source).toBe("file");
    expect((await f.call("GET", "/keys/newco-a")).json).toMatchObject({
      source: "file",
      name: "CI",
      metadata: { team: "platform" },
    });
    expect(uidOf(tenants, "newco")).toBe(tenantUid!);
    expect(uidOf(apiKeys, "newco-a")).toBe(keyUid!);
    expect(await f.data(secret)).toBe(200);
    const sync = (await f.call("GET", "/audit?objectType=config&limit=2")).json.items[1];
    expect(sync.action).toBe("config.sync");
    expect(sync.after.tenants.adopted).toEqual(["newco"]);
    expect(sync.after.keys.adopted).toEqual(["newco-a"]);
  });

  test("a key declared with another name or other metadata than the API key's is not adopted", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } });
    const secret = await newKey("newco", { id: "newco-a", name: "CI", metadata: { team: "platform" } });
    const exported = (await f.call("GET", "/export")).text.split("tenants:\n")[1]!;
    expect(exported).toContain("name: CI");
    expect(exported).toContain("team: platform");
    const errors = await refusedReload(
      BASE_YAML + exported.replace("name: CI", "name: Nightly").replace("team: platform", "team: web"),
    );
    expect(errors).toEqual([
      expect.stringContaining(
        'key "newco-a" was created through the control API for tenant "newco", and this declaration ' +
          "differs from it in name, metadata;",
      ),
    ]);
    expect(await f.data(secret)).toBe(200);
  });

  test("an adopted tenant with API keys of its own cannot then be dropped from the file", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } });
    const secret = await newKey("newco", { id: "newco-a" });
    f.writeConfig(`${BASE_YAML}  newco:\n    name: newco\n    plan: free\n`);
    expect((await f.call("POST", "/config/reload")).status).toBe(200);
    const errors = await refusedReload(BASE_YAML);
    expect(errors[0]).toContain(
      'tenant "newco" is no longer declared, but keys created through the control API belong to it ("newco-a")',
    );
    expect(await f.data(secret)).toBe(200);
  });
});

describe("API-made tenants the new file could not serve", () => {
  test("a removed plan is located at plans:", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } });
    const secret = await newKey("newco");
    const noFree = BASE_YAML.replace(/ {2}free:\n(.*\n){3}/, "").replace("plan: free", "plan: premium");
    expect(await refusedReload(noFree)).toEqual([
      `${f.configPath}:7:1 plans: tenant "newco", created through the control API, uses plan "free", which ` +
        "this file no longer declares; keep the plan, or move the tenant to another plan first (PATCH /tenants/newco)",
    ]);
    expect(await f.data(secret)).toBe(200);
  });

  test("an upstream override to a removed upstream is located at upstreams:", async () => {
    await f.call("POST", "/tenants", {
      body: { id: "eu", plan: "premium", upstreams: { sandbox: "sandbox-eu" } },
    });
    const secret = await newKey("eu");
    expect(await refusedReload(BASE_YAML.replace("  sandbox-eu: { mock: echo }\n", ""))).toEqual([
      `${f.configPath}:4:1 upstreams: tenant "eu", created through the control API, routes upstream "sandbox" ` +
        'to "sandbox-eu", and this file no longer declares "sandbox-eu"; keep the upstream, or change the ' +
        "tenant's upstreams first (PATCH /tenants/eu)",
    ]);
    expect(await f.data(secret)).toBe(200);
  });
});

describe("limit and quota names of API-made objects", () => {
  test("a plan limit named like an API key's limit is refused at the plan's limit, naming the key", async () => {
    // Counted in one counter, the key's 3 per minute would admit many times that.
    await newKey("acme", { id: "acme-ci", limits: [{ limit: 3, window: "1m", name: "burst" }] });
    const errors = await refusedReload(
      BASE_YAML.replace(
        "  premium:\n",
        "  premium:\n    limits: [{ limit: 60, window: 1s, by: key, name: burst }]\n",
      ),
    );
    expect(errors).toEqual([
      `${f.configPath}:13:14 plans.premium.limits[0]: a limit or quota named "burst" is also in force here on ` +
        'key "acme-ci" of tenant "acme", created through the control API; names in force for one request ' +
        'must differ, so give this one another name with name: "..."',
    ]);
  });

  test("so is a plan quota named like an API tenant's own quota, and the owners are listed once per place", async () => {
    for (const id of ["a", "b"]) {
      await f.call("POST", "/tenants", {
        body: { id, plan: "free", quota: { limit: 5, period: "day", name: "daily" } },
      });
    }
    const errors = await refusedReload(
      BASE_YAML.replace("  free:\n", "  free:\n    quota: { limit: 100, period: month, name: daily }\n"),
    );
    expect(errors).toEqual([
      `${f.configPath}:9:12 plans.free.quota: a limit or quota named "daily" is also in force here on 2 ` +
        'objects created through the control API (tenant "a", tenant "b"); names in force for one request ' +
        'must differ, so give this one another name with name: "..."',
    ]);
  });

  test("the control API refuses a tenant limit named like one of its keys' limits", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "premium" } });
    await newKey("newco", { id: "newco-a", limits: [{ limit: 3, window: "1m", name: "burst" }] });
    const before = dumpState(f);
    const p = expectProblem(
      await f.call("PATCH", "/tenants/newco", {
        body: { limits: [{ limit: 100, window: "1s", name: "burst" }] },
      }),
      400,
    );
    expect(p.detail).toContain('key "newco-a" limits[0]: a limit named "burst" is already in force here');
    expect(dumpState(f)).toBe(before);
  });
});
