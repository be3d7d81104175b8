import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { interpolate } from "../../src/config/interpolate.ts";
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

  test("interpolated values are validated like written ones", () => {
    const yaml =
      'version: 1\nupstreams: {}\nplans:\n  p:\n    limits: [{ limit: 1, window: "${W}" }]\nroutes: []\n';
    expect(() => parseConfig(yaml, "x.yaml", { W: "soon" })).toThrow(ConfigError);
    expect(parseConfig(yaml, "x.yaml", { W: "5s" }).config.plans.p?.limits?.[0]?.window).toBe("5s");
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

  test("what only the strict parser catches is still caught: duplicate keys", () => {
    const dup = "version: 1\nupstreams: {}\nplans: {}\nplans: {}\nroutes: []\n";
    // Bun's parser keeps the last duplicate; the offered hash can never match a strictly synced one.
    expect(() => parseConfig(dup, "dup.yaml", {}, { trust: () => false })).toThrow("Map keys must be unique");
  });
});
