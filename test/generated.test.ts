/** Generated files are committed; these fail when someone changes a source and forgets `npm run gen`. */
import { expect, test } from "bun:test";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test("the JSON Schemas and the embedded migrations match their sources", () => {
  const r = Bun.spawnSync([process.execPath, "scripts/gen.ts", "--check"], { cwd: root });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
});

test("drizzle migrations cover src/db/schema.ts", () => {
  const out = mkdtempSync(join(tmpdir(), "gatehouse-migrations-"));
  try {
    cpSync(join(root, "drizzle"), out, { recursive: true });
    const before = readdirSync(out).sort();
    const r = Bun.spawnSync(
      [
        join(root, "node_modules/.bin/drizzle-kit"),
        "generate",
        "--dialect",
        "sqlite",
        "--schema",
        "src/db/schema.ts",
        "--out",
        out,
      ],
      { cwd: root, env: { ...process.env, NO_COLOR: "1" } },
    );
    expect(r.exitCode).toBe(0);
    expect(readdirSync(out).sort()).toEqual(before);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
