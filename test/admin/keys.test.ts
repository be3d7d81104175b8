import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { isWellFormedApiKey } from "../../src/lib/api-key-format.ts";
import { startTestGateway } from "../support/gateway.ts";
import { type AdminFixture, adminFixture, BASE_YAML, dumpState, expectProblem } from "./helpers.ts";

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture();
});
afterEach(() => f.close());

const HOUR = 3_600_000;

describe("the key lifecycle, with traffic flowing", () => {
  test("create → use → rotate → both work in grace → old fails after → disable → enable → revoke", async () => {
    expect((await f.call("POST", "/tenants", { body: { id: "newco", plan: "premium" } })).status).toBe(201);
    const created = await f.call("POST", "/tenants/newco/keys", { body: { id: "newco-ci" } });
    expect(created.status).toBe(201);
    const first = created.json.secret as string;
    expect(isWellFormedApiKey(first)).toBe(true);
    expect(created.json.key).toEqual(
      expect.objectContaining({ id: "newco-ci", tenantId: "newco", prefix: "ghk_", last4: first.slice(-4) }),
    );
    expect(await f.data(first)).toBe(200);

    const rotated = await f.call("POST", "/keys/newco-ci/rotate", { body: { gracePeriod: "1h" } });
    expect(rotated.status).toBe(200);
    const second = rotated.json.secret as string;
    expect(second).not.toBe(first);
    expect(rotated.json.key.previousSecretValidUntil).toBe("2026-01-01T01:00:00.000Z");
    expect(await f.data(second)).toBe(200);
    expect(await f.data(first)).toBe(200);

    f.clock.advance(HOUR - 1);
    expect(await f.data(first)).toBe(200);
    f.clock.advance(1);
    expect(await f.data(first)).toBe(401);
    expect(await f.data(second)).toBe(200);

    expect((await f.call("PATCH", "/keys/newco-ci", { body: { disabled: true } })).json.disabled).toBe(true);
    expect(await f.data(second)).toBe(401);
    expect((await f.call("PATCH", "/keys/newco-ci", { body: { disabled: false } })).json.disabled).toBe(
      false,
    );
    expect(await f.data(second)).toBe(200);

    expect((await f.call("DELETE", "/keys/newco-ci")).status).toBe(204);
    expect(await f.data(second)).toBe(401);
    expectProblem(await f.call("GET", "/keys/newco-ci"), 404);

    const actions = (await f.call("GET", "/audit?objectType=key&objectId=newco-ci")).json.items.map(
      (e: { action: string }) => e.action,
    );
    expect(actions).toEqual(["key.revoke", "key.enable", "key.disable", "key.rotate", "key.create"]);
  });

  test("expiry set through PATCH ends the key at that instant, and null lifts it", async () => {
    const { json } = await f.call("POST", "/tenants/acme/keys");
    const id = json.key.id as string;
    const r = await f.call("PATCH", `/keys/${id}`, { body: { expiresAt: "2026-01-01T00:10:00Z" } });
    expect(r.json.expiresAt).toBe("2026-01-01T00:10:00.000Z");
    f.clock.advance(10 * 60_000 - 1);
    expect(await f.data(json.secret)).toBe(200);
    f.clock.advance(1);
    expect(await f.data(json.secret)).toBe(401);
    await f.call("PATCH", `/keys/${id}`, { body: { expiresAt: null } });
    expect(await f.data(json.secret)).toBe(200);
  });

  test("a key created with expiresAt and disabled", async () => {
    const r = await f.call("POST", "/tenants/acme/keys", {
      body: {
        expiresAt: "2026-02-01T00:00:00Z",
        disabled: true,
        limits: [{ limit: 3, window: "1m", by: "key" }],
      },
    });
    expect(r.status).toBe(201);
    expect(r.json.key).toEqual(
      expect.objectContaining({
        expiresAt: "2026-02-01T00:00:00.000Z",
        disabled: true,
        limits: [{ limit: 3, window: "1m", by: "key" }],
      }),
    );
    expect(await f.data(r.json.secret)).toBe(401);
  });

  test("the grace period defaults to 24h, 0s ends the old secret at once, and more than 7d is refused", async () => {
    const { json } = await f.call("POST", "/tenants/acme/keys");
    const id = json.key.id as string;
    const r = await f.call("POST", `/keys/${id}/rotate`);
    expect(r.status).toBe(200);
    expect(r.json.key.previousSecretValidUntil).toBe("2026-01-02T00:00:00.000Z");

    const now = await f.call("POST", `/keys/${id}/rotate`, { body: { gracePeriod: "0s" } });
    expect(now.json.key.previousSecretValidUntil).toBeNull();
    expect(await f.data(r.json.secret)).toBe(401);
    expect(await f.data(now.json.secret)).toBe(200);

    const before = dumpState(f);
    const p = expectProblem(await f.call("POST", `/keys/${id}/rotate`, { body: { gracePeriod: "8d" } }), 400);
    expect(p.detail).toContain("7d");
    expect(dumpState(f)).toBe(before);
  });

  test("rotating again during a grace period ends the older secret", async () => {
    const { json } = await f.call("POST", "/tenants/acme/keys");
    const id = json.key.id as string;
    const second = (await f.call("POST", `/keys/${id}/rotate`, { body: { gracePeriod: "1h" } })).json.secret;
    const third = (await f.call("POST", `/keys/${id}/rotate`, { body: { gracePeriod: "1h" } })).json.secret;
    expect(await f.data(json.secret)).toBe(401);
    expect(await f.data(second)).toBe(200);
    expect(await f.data(third)).toBe(200);
  });
});

describe("names and metadata", () => {
  test("a key carries a short name and string labels: created, listed, changed and cleared", async () => {
    const created = await f.call("POST", "/tenants/acme/keys", {
      body: { id: "acme-ci", name: "CI runner", metadata: { team: "platform", env: "ci" } },
    });
    expect(created.status).toBe(201);
    expect(created.json.key).toMatchObject({ name: "CI runner", metadata: { team: "platform", env: "ci" } });
    const listed = (await f.call("GET", "/tenants/acme/keys")).json.items;
    expect(listed.map((k: { id: string; name: string | null }) => [k.id, k.name])).toEqual([
      ["acme-ci", "CI runner"],
      ["acme-dev", null],
    ]);
    const renamed = await f.call("PATCH", "/keys/acme-ci", { body: { name: "CI (nightly)", metadata: {} } });
    expect(renamed.json).toMatchObject({ name: "CI (nightly)", metadata: {} });
    expect((await f.call("PATCH", "/keys/acme-ci", { body: { name: null } })).json.name).toBeNull();
    const audit = (await f.call("GET", "/audit?objectType=key&objectId=acme-ci&limit=1")).json.items[0];
    expect(audit.before).toMatchObject({ name: "CI (nightly)" });
    expect(audit.after).toMatchObject({ name: null });
  });

  test("names and labels are bounded, and refused in words that say what is allowed", async () => {
    const before = dumpState(f);
    const refuse = async (body: unknown, words: string) => {
      const p = expectProblem(await f.call("POST", "/tenants/acme/keys", { body }), 400);
      expect(p.detail).toContain(words);
    };
    await refuse(
      { name: "n".repeat(101) },
      "name must be text of at most 100 characters without control characters",
    );
    await refuse(
      { metadata: { "not a name": "v" } },
      `metadata has the name "not a name", which is not allowed: names there must be 1 to 64 letters, digits`,
    );
    await refuse({ metadata: { k: "v".repeat(513) } }, "metadata.k must be text of at most 512 characters");
    await refuse(
      { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"])) },
      "metadata may have at most 50 entries",
    );
    await refuse({ metadata: { k: 5 } }, "metadata.k must be text");
    expect(dumpState(f)).toBe(before);
  });

  test("keys in gateway.yaml may have a name and metadata too", () => {
    const g = adminFixture(
      BASE_YAML.replace(
        "      - { id: acme-dev, secret: gh_demo_acme_0001 }",
        "      - { id: acme-dev, secret: gh_demo_acme_0001, name: Laptop, metadata: { owner: wile } }",
      ),
    );
    return g
      .call("GET", "/keys/acme-dev")
      .then((r) => expect(r.json).toMatchObject({ name: "Laptop", metadata: { owner: "wile" } }))
      .finally(() => g.close());
  });
});

describe("leaked keys and grace periods", () => {
  test("a grace period can be ended on its own: the old secret fails, the new one works", async () => {
    const { json } = await f.call("POST", "/tenants/acme/keys", { body: { id: "acme-ci" } });
    const rotated = await f.call("POST", "/keys/acme-ci/rotate", { body: { gracePeriod: "1h" } });
    expect(await f.data(json.secret)).toBe(200);
    const ended = await f.call("POST", "/keys/acme-ci/end-grace");
    expect(ended.status).toBe(200);
    expect(ended.json.previousSecretValidUntil).toBeNull();
    expect(await f.data(json.secret)).toBe(401);
    expect(await f.data(rotated.json.secret)).toBe(200);
    // Again, or with no grace period running: nothing changes and nothing is logged.
    const again = await f.call("POST", "/keys/acme-ci/end-grace");
    expect(again.status).toBe(200);
    const actions = (await f.call("GET", "/audit?objectType=key&objectId=acme-ci")).json.items.map(
      (e: { action: string }) => e.action,
    );
    expect(actions).toEqual(["key.end_grace", "key.rotate", "key.create"]);
    expectProblem(await f.call("POST", "/keys/acme-dev/end-grace"), 409);
    expectProblem(await f.call("POST", "/keys/nope/end-grace"), 404);
  });

  test("a leaked key is replaced in one call: the leaked secret fails from the next request", async () => {
    const gw = startTestGateway(BASE_YAML.replace(/server:\n {2}adminToken: .*\n/, ""), {
      testClockStart: 0,
    });
    try {
      const admin = (path: string, body?: unknown) =>
        fetch(`${gw.adminUrl}${path}`, {
          method: "POST",
          ...(body ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
        });
      const data = async (secret: string) => {
        const res = await fetch(`${gw.dataUrl}/v1/things`, {
          headers: { authorization: `Bearer ${secret}` },
        });
        await res.arrayBuffer();
        return res.status;
      };
      const leaked = (
        (await (await admin("/tenants/acme/keys", { id: "acme-ci" })).json()) as { secret: string }
      ).secret;
      // Used, so the data plane has it in its cache of recently seen keys.
      expect(await data(leaked)).toBe(200);
      const rotated = await admin("/keys/acme-ci/rotate", { gracePeriod: "0s" });
      expect(rotated.status).toBe(200);
      const { secret, key } = (await rotated.json()) as { secret: string; key: Record<string, unknown> };
      expect(key.previousSecretValidUntil).toBeNull();
      expect(await data(leaked)).toBe(401);
      expect(await data(secret)).toBe(200);
    } finally {
      await gw.close();
    }
  });
});

describe("keys and secrets", () => {
  test("the secret appears only in the create and rotate responses; no listing carries a secret or hash", async () => {
    const created = await f.call("POST", "/tenants/acme/keys", { body: { id: "ci-1" } });
    const rotated = await f.call("POST", "/keys/ci-1/rotate");
    const secrets = [created.json.secret, rotated.json.secret];
    const hashes = (
      f.database.sqlite.query("SELECT hash, previous_hash FROM api_keys").all() as Record<
        string,
        string | null
      >[]
    )
      .flatMap((r) => [r.hash, r.previous_hash])
      .filter((h): h is string => !!h);
    expect(hashes.length).toBeGreaterThan(2);
    for (const path of [
      "/tenants",
      "/tenants/acme",
      "/tenants/acme/keys",
      "/tenants/globex/keys",
      "/keys/ci-1",
      "/keys/acme-dev",
      "/audit",
      "/export",
    ]) {
      const r = await f.call("GET", path);
      expect(r.status).toBe(200);
      for (const s of secrets) expect(r.text).not.toContain(s);
      expect(r.text).not.toContain("gh_demo_acme_0001");
      if (path !== "/export") for (const h of hashes) expect(r.text).not.toContain(h.slice(7));
    }
    const list = await f.call("GET", "/tenants/acme/keys");
    for (const key of list.json.items) {
      expect(Object.keys(key).sort()).toEqual(
        [
          "createdAt",
          "disabled",
          "expiresAt",
          "id",
          "last4",
          "lastUsedAt",
          "limits",
          "metadata",
          "name",
          "prefix",
          "previousSecretValidUntil",
          "quota",
          "rules",
          "source",
          "sourceRef",
          "tenantId",
          "updatedAt",
        ].sort(),
      );
    }
  });

  test("only hashes are stored", async () => {
    const { json } = await f.call("POST", "/tenants/acme/keys");
    const dump = JSON.stringify(f.database.sqlite.query("SELECT * FROM api_keys").all());
    expect(dump).not.toContain(json.secret);
    expect(dump).toContain(json.secret.slice(-4));
  });

  test("CI may create keys for a file-declared tenant; those keys are API-owned", async () => {
    const r = await f.call("POST", "/tenants/acme/keys", { body: { id: "acme-ci" } });
    expect(r.status).toBe(201);
    expect(r.json.key.source).toBe("api");
    expect(await f.data(r.json.secret)).toBe(200);
    expect((await f.call("PATCH", "/keys/acme-ci", { body: { disabled: true } })).status).toBe(200);
    expect((await f.call("DELETE", "/keys/acme-ci")).status).toBe(204);
  });

  test("keys from the config file are read-only: 409 names the file and line", async () => {
    const before = dumpState(f);
    for (const [method, path, body] of [
      ["PATCH", "/keys/acme-dev", { disabled: true }],
      ["PATCH", "/keys/globex-dev", { expiresAt: "2026-01-01T00:00:00Z" }],
      ["POST", "/keys/acme-dev/rotate", {}],
      ["DELETE", "/keys/acme-dev", undefined],
    ] as const) {
      const p = expectProblem(await f.call(method, path, { body }), 409);
      expect(p.detail).toMatch(/declared in gateway\.yaml:(24|28); change it there/);
    }
    expect(dumpState(f)).toBe(before);
    expect(await f.data("gh_demo_acme_0001")).toBe(200);
  });

  test("key ids are unique across tenants, and keys of unknown tenants are 404", async () => {
    expectProblem(await f.call("POST", "/tenants/globex/keys", { body: { id: "acme-dev" } }), 409);
    expectProblem(await f.call("POST", "/tenants/nobody/keys"), 404);
    expectProblem(await f.call("GET", "/tenants/nobody/keys"), 404);
    expectProblem(await f.call("GET", "/keys/nothing"), 404);
  });

  test("key limits are checked against the tenant's", async () => {
    // globex's plan already has a limit named 1000-per-1s.
    const p = expectProblem(
      await f.call("POST", "/tenants/globex/keys", { body: { limits: [{ limit: 1000, window: "1s" }] } }),
      400,
    );
    expect(p.detail).toContain("1000-per-1s");
  });

  test("last use is recorded in batches from the auth policy's hook", async () => {
    const { json } = await f.call("POST", "/tenants/acme/keys", { body: { id: "used" } });
    f.clock.advance(1000);
    expect(await f.data(json.secret)).toBe(200);
    f.clock.advance(1000);
    expect(await f.data(json.secret)).toBe(200);
    expect((await f.call("GET", "/keys/used")).json.lastUsedAt).toBeNull();
    expect(f.tracker.flush()).toBe(1);
    expect((await f.call("GET", "/keys/used")).json.lastUsedAt).toBe("2026-01-01T00:00:02.000Z");
    expect((await f.call("GET", "/tenants/acme")).json.lastUsedAt).toBe("2026-01-01T00:00:02.000Z");
    // An older time recorded later never moves it backwards.
    f.tracker.record("used", 0);
    f.tracker.stop();
    expect((await f.call("GET", "/keys/used")).json.lastUsedAt).toBe("2026-01-01T00:00:02.000Z");
  });
});
