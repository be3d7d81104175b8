/**
 * A tenant's externalIds through the file and the control API: stored, exported, and never shared
 * by two tenants or equal to another tenant's id, whichever side makes the clash.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { type AdminFixture, adminFixture, BASE_YAML, expectProblem } from "../admin/helpers.ts";

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture(
    BASE_YAML.replace(
      "    metadata: { region: eu }",
      "    metadata: { region: eu }\n    externalIds: [org_acme]",
    ),
  );
});
afterEach(() => f.close());

test("externalIds are created, changed and shown through the control API", async () => {
  expect((await f.call("GET", "/tenants/acme")).json.externalIds).toEqual(["org_acme"]);
  const created = await f.call("POST", "/tenants", {
    body: { id: "newco", plan: "free", externalIds: ["org_new"] },
  });
  expect(created.status).toBe(201);
  expect(created.json.externalIds).toEqual(["org_new"]);
  expect(f.state.snapshot.tenantsByName.get("org_new")?.id).toBe("newco");
  const changed = await f.call("PATCH", "/tenants/newco", { body: { externalIds: ["org_newer"] } });
  expect(changed.json.externalIds).toEqual(["org_newer"]);
  expect(f.state.snapshot.tenantsByName.has("org_new")).toBe(false);
});

test("an external id another tenant has, or another tenant's id, is refused and changes nothing", async () => {
  for (const body of [
    { id: "newco", plan: "free", externalIds: ["org_acme"] },
    { id: "newco", plan: "free", externalIds: ["globex"] },
    { id: "org_acme", plan: "free" },
  ]) {
    const p = expectProblem(await f.call("POST", "/tenants", { body }), 400);
    expect(p.detail).toContain("external id");
  }
  expect((await f.call("GET", "/tenants/newco")).status).toBe(404);
  expect((await f.call("GET", "/tenants/org_acme")).status).toBe(404);
  expectProblem(
    await f.call("POST", "/tenants", { body: { id: "x1", plan: "free", externalIds: ["a b"] } }),
    400,
  );
});
