/**
 * GET /plans and the effective policy of a tenant and of a key: what the data plane applies, merged
 * from plan, tenant and key, each item saying who declares it, where (config path) and in which line
 * of the file (or "control API").
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type AdminFixture, adminFixture, expectProblem, TOKEN } from "./helpers.ts";

const YAML = `version: 1
server:
  adminToken: ${TOKEN}
upstreams:
  sandbox: { mock: echo }
plans:
  free:
    limits:
      - { limit: 10, window: 1s, name: burst }
      - { limit: 100, window: 1m, by: key }
    quota: { limit: 1000, period: month, name: monthly }
    concurrency: 5
    rules:
      - allow: "GET /v1/**"
  premium:
    rules: [{ allow: "* /v1/**" }, { deny: "* /v1/admin/**" }]
routes:
  - { match: "* /v1/**", upstream: sandbox }
tenants:
  acme:
    plan: free
    concurrency: 2
    limits: [{ limit: 50, window: 1h, name: hourly }]
    keys:
      - id: acme-dev
        secret: gh_demo_acme_0001
        rules: [{ deny: "GET /v1/secrets/**" }]
  globex:
    plan: premium
`;

/** "gateway.yaml:N" of the first line holding `text`. */
const line = (text: string) => `gateway.yaml:${YAML.split("\n").findIndex((l) => l.includes(text)) + 1}`;

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture(YAML);
});
afterEach(() => f.close());

describe("GET /plans", () => {
  test("every plan as declared, each item with where it is declared, and how many tenants use it", async () => {
    await f.call("POST", "/tenants", { body: { id: "initech", plan: "free" } });
    const r = await f.call("GET", "/plans");
    expect(r.status).toBe(200);
    expect(r.json.items).toEqual([
      {
        name: "free",
        declaredAt: "plans.free",
        source: line("  free:"),
        limits: [
          {
            limit: 10,
            window: "1s",
            name: "burst",
            declaredAt: "plans.free.limits[0]",
            source: line("name: burst"),
          },
          {
            limit: 100,
            window: "1m",
            by: "key",
            declaredAt: "plans.free.limits[1]",
            source: line("by: key"),
          },
        ],
        quota: {
          limit: 1000,
          period: "month",
          name: "monthly",
          declaredAt: "plans.free.quota",
          source: line("name: monthly"),
        },
        rules: [
          {
            effect: "allow",
            pattern: "GET /v1/**",
            declaredAt: "plans.free.rules[0]",
            source: line('allow: "GET'),
          },
        ],
        concurrency: 5,
        tenants: 2,
      },
      {
        name: "premium",
        declaredAt: "plans.premium",
        source: line("  premium:"),
        limits: [],
        quota: null,
        rules: [
          // Both on one line of the file.
          {
            effect: "allow",
            pattern: "* /v1/**",
            declaredAt: "plans.premium.rules[0]",
            source: line("rules: [{"),
          },
          {
            effect: "deny",
            pattern: "* /v1/admin/**",
            declaredAt: "plans.premium.rules[1]",
            source: line("rules: [{"),
          },
        ],
        concurrency: null,
        tenants: 1,
      },
    ]);
  });
});

describe("effective policy", () => {
  test("a tenant's: its plan's limits, quota, rules and concurrency merged with its own, with origins", async () => {
    const r = await f.call("GET", "/tenants/acme/policy");
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      tenant: "acme",
      key: null,
      plan: "free",
      limits: [
        {
          name: "burst",
          limit: 10,
          window: "1s",
          by: "tenant",
          origin: "plan",
          declaredAt: "plans.free.limits[0]",
          source: line("name: burst"),
        },
        {
          name: "100-per-1m-by-key",
          limit: 100,
          window: "1m",
          by: "key",
          origin: "plan",
          declaredAt: "plans.free.limits[1]",
          source: line("by: key"),
        },
        {
          name: "hourly",
          limit: 50,
          window: "1h",
          by: "tenant",
          origin: "tenant",
          declaredAt: "tenants.acme.limits[0]",
          source: line("name: hourly"),
        },
      ],
      quotas: [
        {
          name: "monthly",
          limit: 1000,
          period: "month",
          anchor: 1,
          timezone: "UTC",
          by: "tenant",
          origin: "plan",
          declaredAt: "plans.free.quota",
          source: line("name: monthly"),
        },
      ],
      rules: [
        {
          effect: "allow",
          pattern: "GET /v1/**",
          origin: "plan",
          declaredAt: "plans.free.rules[0]",
          source: line('allow: "GET'),
        },
      ],
      concurrency: {
        limit: 2,
        origin: "tenant",
        declaredAt: "tenants.acme.concurrency",
        source: line("concurrency: 2"),
      },
    });
  });

  test("a key's adds the key's own, counted per key; what the API made says so", async () => {
    const made = await f.call("POST", "/tenants/acme/keys", {
      body: {
        id: "acme-ci",
        limits: [{ limit: 3, window: "1s", name: "ci-burst" }],
        rules: [{ deny: "DELETE /v1/**" }],
        quota: { limit: 100, period: "day", name: "ci-daily" },
      },
    });
    expect(made.status).toBe(201);
    const r = (await f.call("GET", "/keys/acme-ci/policy")).json;
    expect(r.key).toBe("acme-ci");
    expect(r.limits.map((l: { name: string }) => l.name)).toEqual([
      "burst",
      "100-per-1m-by-key",
      "hourly",
      "ci-burst",
    ]);
    expect(r.limits[3]).toEqual({
      name: "ci-burst",
      limit: 3,
      window: "1s",
      by: "key",
      origin: "key",
      declaredAt: "tenants.acme.keys[acme-ci].limits[0]",
      source: "control API",
    });
    expect(
      r.quotas.map((q: { name: string; by: string; origin: string }) => [q.name, q.by, q.origin]),
    ).toEqual([
      ["monthly", "tenant", "plan"],
      ["ci-daily", "key", "key"],
    ]);
    expect(r.rules.at(-1)).toEqual({
      effect: "deny",
      pattern: "DELETE /v1/**",
      origin: "key",
      declaredAt: "tenants.acme.keys[acme-ci].rules[0]",
      source: "control API",
    });
    // A key declared in the file points at its line.
    const dev = (await f.call("GET", "/keys/acme-dev/policy")).json;
    expect(dev.rules.at(-1)).toMatchObject({ origin: "key", source: line("GET /v1/secrets/**") });
  });

  test("an API-made tenant's own items come from the control API; the plan's cap applies without its own", async () => {
    await f.call("POST", "/tenants", {
      body: { id: "initech", plan: "free", rules: [{ allow: "POST /v1/**" }] },
    });
    const r = (await f.call("GET", "/tenants/initech/policy")).json;
    expect(r.rules.at(-1)).toMatchObject({
      origin: "tenant",
      declaredAt: "tenants.initech.rules[0]",
      source: "control API",
    });
    expect(r.concurrency).toEqual({
      limit: 5,
      origin: "plan",
      declaredAt: "plans.free.concurrency",
      source: line("concurrency: 5"),
    });
    expect((await f.call("GET", "/tenants/globex/policy")).json.concurrency).toBeNull();
  });

  test("follows changes at once, and unknown ids are 404", async () => {
    await f.call("POST", "/tenants", { body: { id: "initech", plan: "free" } });
    await f.call("PATCH", "/tenants/initech", { body: { plan: "premium" } });
    expect((await f.call("GET", "/tenants/initech/policy")).json.plan).toBe("premium");
    expectProblem(await f.call("GET", "/tenants/nope/policy"), 404);
    expectProblem(await f.call("GET", "/keys/nope/policy"), 404);
  });

  test("with the file changed since it was loaded, sources are unknown rather than wrong", async () => {
    f.writeConfig(`# a comment moves every line\n${YAML}`);
    const r = (await f.call("GET", "/tenants/acme/policy")).json;
    expect(r.limits[0].source).toBeNull();
    expect(r.limits[0].declaredAt).toBe("plans.free.limits[0]");
  });
});
