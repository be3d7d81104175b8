/** One fixture per kind of invalid config (fixtures/invalid/NAME.yaml) with its exact message beside it. */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { parseConfig } from "../../src/config/load.ts";

const dir = join(import.meta.dir, "../../fixtures/invalid");
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => f.slice(0, -5));

describe("invalid configs", () => {
  test("there is a fixture for every kind of error", () => {
    expect(names.length).toBeGreaterThanOrEqual(25);
  });

  test.each(names)("%s", (name) => {
    const file = `fixtures/invalid/${name}.yaml`;
    const expected = readFileSync(join(dir, `${name}.expected`), "utf8");
    let error: unknown;
    try {
      parseConfig(readFileSync(join(dir, `${name}.yaml`), "utf8"), file, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(`${(error as ConfigError).message}\n`).toBe(expected);
  });
});
