import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { escapeInterpolation, interpolate } from "../../src/config/interpolate.ts";
import { loadConfigFile, parseConfig } from "../../src/config/load.ts";

const root = join(import.meta.dir, "../..");

describe("the shipped gateway.yaml", () => {
  test("is valid without any environment", () => {
    const loaded = loadConfigFile(join(root, "gateway.yaml"), {});
    expect(Object.keys(loaded.config.tenants ?? {})).toEqual(["acme", "globex"]);
    expect(loaded.config.tenants?.acme?.keys?.[0]?.secret).toBe("gh_demo_acme_0001");
    expect(loaded.sourceRef(["tenants", "acme"])).toMatch(/^gateway\.yaml:\d+$/);
  });

  test("takes the demo key from the environment when set", () => {
    const loaded = loadConfigFile(join(root, "gateway.yaml"), { ACME_KEY: "from-env-key-0001" });
    expect(loaded.config.tenants?.acme?.keys?.[0]?.secret).toBe("from-env-key-0001");
  });
});

describe("interpolation", () => {
  const env = { A: "one", EMPTY: "" };
  test.each([
    ["plain", "plain"],
    ["${A}", "one"],
    ["x-${A}-y", "x-one-y"],
    ["${MISSING:-fallback}", "fallback"],
    ["${EMPTY:-fallback}", "fallback"],
    ["${EMPTY}", ""],
    ["$${A}", "${A}"],
    ["${A}${A}", "oneone"],
  ])("%s → %s", (input, output) => {
    expect(interpolate(input, env)).toEqual({ value: output });
  });

  test("a missing variable without a default is an error naming it", () => {
    expect(interpolate("${NOPE}", env)).toMatchObject({ error: "environment variable NOPE is not set" });
  });

  test.each(["plain", "${A}", "$${A}", "a$b", "$", "$${", "x$$${y", "${", "}${A:-d}$", "$$$$"])(
    "escaped, %s interpolates back to itself",
    (text) => {
      expect(interpolate(escapeInterpolation(text), env)).toEqual({ value: text });
    },
  );

  test("interpolated values are validated like written ones", () => {
    const yaml =
      'version: 1\nupstreams: {}\nplans:\n  p:\n    limits: [{ limit: 1, window: "${W}" }]\nroutes: []\n';
    expect(() => parseConfig(yaml, "x.yaml", { W: "soon" })).toThrow(ConfigError);
    expect(parseConfig(yaml, "x.yaml", { W: "5s" }).config.plans.p?.limits?.[0]?.window).toBe("5s");
  });
});

describe("errors never echo a value from the environment", () => {
  const S = "hunter2-c0ffee";
  const env = {
    NOT_HTTP: `ftp://${S}`,
    LIMIT: S,
    WINDOW: S,
    BY: S,
    EXPIRES: S,
    ADMIN: `${S}.example:8081`,
    UPSTREAM_URL: `http://admin:${S}@[bad`,
    LIMIT_NAME: S,
    TZ: `${S}/Zone`,
    RULE: `DELTE /${S}/**`,
    SEGMENT: `{${S}}`,
    ROUTE: `GET /v1/${S}`,
    PLAN: S,
    KEY_ID: `${S}-key`,
  };
  const issuesOf = (yaml: string) => {
    try {
      parseConfig(yaml, "gateway.yaml", env);
    } catch (err) {
      return (err as ConfigError).issues;
    }
    throw new Error("expected a ConfigError");
  };
  const expectNamed = (issues: ConfigError["issues"], named: Record<string, string>) => {
    for (const i of issues) {
      expect(i.message).not.toContain(S);
      expect(i.hint ?? "").not.toContain(S);
    }
    for (const [path, variable] of Object.entries(named)) {
      const issue = issues.find((i) => i.path === path);
      expect(issue?.message, path).toContain(`\${${variable}}`);
    }
  };

  test("in schema errors", () => {
    const issues = issuesOf(`version: 1
upstreams:
  api: { url: "\${NOT_HTTP}" }
plans:
  free:
    limits: [{ limit: "\${LIMIT}", window: "\${WINDOW}", by: "\${BY}" }]
routes: []
tenants:
  acme: { plan: free, keys: [{ id: k1, secret: abcdef, expires: "\${EXPIRES}" }] }
`);
    expect(issues).toHaveLength(5);
    expectNamed(issues, {
      "upstreams.api.url": "NOT_HTTP",
      "plans.free.limits[0].limit": "LIMIT",
      "plans.free.limits[0].window": "WINDOW",
      "plans.free.limits[0].by": "BY",
      "tenants.acme.keys[0].expires": "EXPIRES",
    });
  });

  test("in reference and value errors", () => {
    const issues = issuesOf(`version: 1
server: { admin: "\${ADMIN}" }
upstreams:
  api: { url: "\${UPSTREAM_URL}" }
plans:
  free:
    limits: [{ limit: 1, window: 1s, name: "\${LIMIT_NAME}" }, { limit: 2, window: 1s, name: "\${LIMIT_NAME}" }]
    quota: { limit: 10, period: day, timezone: "\${TZ}" }
    rules: [{ deny: "\${RULE}" }, { allow: "GET /v1/\${SEGMENT}" }]
routes:
  - { match: "\${ROUTE}", upstream: api }
  - { match: "GET /v1/${S}", upstream: api }
tenants:
  acme: { plan: "\${PLAN}", keys: [{ id: "\${KEY_ID}", secret: same-secret }] }
  globex: { plan: free, keys: [{ id: "\${KEY_ID}", secret: same-secret }] }
`);
    expectNamed(issues, {
      "server.admin": "ADMIN",
      "upstreams.api.url": "UPSTREAM_URL",
      "plans.free.quota.timezone": "TZ",
      "plans.free.rules[0].deny": "RULE",
      "plans.free.rules[1].allow": "SEGMENT",
      "routes[1].match": "ROUTE",
      "tenants.acme.plan": "PLAN",
      "tenants.globex.keys[0].id": "KEY_ID",
    });
    expect(issues.map((i) => i.path)).toContain("plans.free.limits[1]");
    expect(issues.map((i) => i.path)).toContain("tenants.globex.keys[0]");
  });
});

describe("reporting", () => {
  test("every error in a file is reported at once", () => {
    const yaml = "version: 1\nupstreams: {}\nplans: { p: { limitz: [], rulez: [] } }\nroutes: []\n";
    try {
      parseConfig(yaml, "x.yaml", {});
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect((err as ConfigError).issues.map((i) => i.path)).toEqual(["plans.p.limitz", "plans.p.rulez"]);
    }
  });

  test("the same config always hashes the same, and any change changes the hash", () => {
    const yaml = "version: 1\nupstreams: {}\nplans: {}\nroutes: []\n";
    expect(parseConfig(yaml, "a.yaml", {}).hash).toBe(parseConfig(yaml, "b.yaml", {}).hash);
    expect(parseConfig(yaml, "a.yaml", {}).hash).not.toBe(
      parseConfig(`${yaml}database: ":memory:"\n`, "a.yaml", {}).hash,
    );
  });
});

describe("trusted loads", () => {
  const shipped = () => readFileSync(join(root, "gateway.yaml"), "utf8");

  test("the quick parse yields the same config and hash as the strict one", () => {
    const env = { ACME_KEY: "from-env-key-0001" };
    const strict = parseConfig(shipped(), "gateway.yaml", env);
    let offered: string | undefined;
    const quick = parseConfig(shipped(), "gateway.yaml", env, {
      trust: ({ hash }) => {
        offered = hash;
        return true;
      },
    });
    expect(offered).toBe(strict.hash);
    expect(quick.config).toEqual(strict.config);
    expect(quick.sourceRef(["tenants", "globex"])).toBe(strict.sourceRef(["tenants", "globex"]));
  });

  test("an environment change changes the hash, so a trusted load falls back to the strict one", () => {
    const a = parseConfig(shipped(), "gateway.yaml", {});
    const b = parseConfig(shipped(), "gateway.yaml", { ACME_KEY: "another-key-0001" });
    expect(a.hash).not.toBe(b.hash);
  });

  test("a hash synced by a build with fewer checks is not trusted, so the new checks run", () => {
    // A fail-open typo that earlier builds accepted and synced.
    const typo = 'version: 1\nupstreams: {}\nplans: { p: { rules: [{ deny: "DELTE /**" }] } }\nroutes: []\n';
    const config = Bun.YAML.parse(typo);
    const earlierHash = createHash("sha256")
      .update(typo)
      .update("\0")
      .update(JSON.stringify(config))
      .digest("hex");
    expect(() =>
      parseConfig(typo, "gateway.yaml", {}, { trust: ({ hash }) => hash === earlierHash }),
    ).toThrow('"DELTE" is not an HTTP method');
  });

  test("what only the strict parser catches is still caught: duplicate keys", () => {
    const dup = "version: 1\nupstreams: {}\nplans: {}\nplans: {}\nroutes: []\n";
    // Bun's parser keeps the last duplicate; the offered hash can never match a strictly synced one.
    expect(() => parseConfig(dup, "dup.yaml", {}, { trust: () => false })).toThrow("Map keys must be unique");
  });
});
