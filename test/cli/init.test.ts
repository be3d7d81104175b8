/** `gatehouse init`: a starter config that validates and serves, written once, never over a file. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatehouseCommand, startProcess } from "../support/process.ts";

const root = join(import.meta.dir, "../..");
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-init-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => {
  const r = Bun.spawnSync([...gatehouseCommand(), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "" },
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

test("writes a commented config, and the schema its $schema line names, that validates and serves", async () => {
  const r = run("init", "starter.yaml");
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  const secret = /^ {2}(ghk_\w+)$/m.exec(r.out)?.[1];
  expect(secret).toBeDefined();
  const text = readFileSync(join(dir, "starter.yaml"), "utf8");
  expect(text).toStartWith("# yaml-language-server: $schema=./gateway.schema.json\n");
  // Only the key's hash is in the file.
  expect(text).not.toContain(secret!);
  expect(readFileSync(join(dir, "gateway.schema.json"), "utf8")).toBe(
    readFileSync(join(root, "gateway.schema.json"), "utf8"),
  );

  expect(run("validate", "starter.yaml")).toMatchObject({
    code: 0,
    out: "starter.yaml: ok (1 tenant, 1 route)\n",
  });
  const gh = await startProcess(
    gatehouseCommand(),
    ["serve", "starter.yaml", "--db", ":memory:", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    { cwd: dir },
  );
  try {
    const res = await fetch(`${gh.dataUrl}/v1/hello`, { headers: { "x-api-key": secret! } });
    expect(res.status).toBe(200);
  } finally {
    gh.proc.kill("SIGTERM");
    await gh.proc.exited;
  }
});

test("refuses to overwrite a file, and writes nothing; --force overwrites", () => {
  writeFileSync(join(dir, "mine.yaml"), "# my own config\n");
  const r = run("init", "mine.yaml");
  expect(r.code).toBe(2);
  expect(r.err).toBe(
    "gatehouse init: mine.yaml already exists; choose another FILE, or pass --force to overwrite\n",
  );
  expect(readFileSync(join(dir, "mine.yaml"), "utf8")).toBe("# my own config\n");

  // A schema file of someone else's is not overwritten either, and then neither file is written.
  const sub = join(dir, "sub");
  mkdirSync(sub);
  writeFileSync(join(sub, "gateway.schema.json"), "{}\n");
  const s = run("init", "sub/gateway.yaml");
  expect(s.code).toBe(2);
  expect(s.err).toStartWith("gatehouse init: sub/gateway.schema.json already exists;");
  expect(existsSync(join(sub, "gateway.yaml"))).toBe(false);

  expect(run("init", "mine.yaml", "--force").code).toBe(0);
  expect(readFileSync(join(dir, "mine.yaml"), "utf8")).toStartWith("# yaml-language-server:");
});
