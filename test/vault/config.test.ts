/** Config checks that need the vault: a credential the file names must be stored. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { parseConfig } from "../../src/config/load.ts";
import { missingCredentials } from "../../src/vault/references.ts";

const root = join(import.meta.dir, "../..");

describe("credentials the config names", () => {
  test("each one not stored is a located error with the way out (fixtures/vault)", () => {
    const file = "fixtures/vault/missing-credential.yaml";
    const loaded = parseConfig(readFileSync(join(root, file), "utf8"), file, {});
    const stored = new Set(["petstore-token"]);
    expect(missingCredentials(loaded, (n) => stored.has(n))).toHaveLength(1);
    const error = new ConfigError(missingCredentials(loaded, () => false));
    expect(`${error.message}\n`).toBe(
      readFileSync(join(root, "fixtures/vault/missing-credential.expected"), "utf8"),
    );
  });
});
