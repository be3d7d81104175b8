/**
 * GATEHOUSE_LISTEN, GATEHOUSE_ADMIN, GATEHOUSE_DB and GATEHOUSE_ADMIN_TOKEN override the file, and
 * flags override them. Each is checked as the file's value would be, and named when refused.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GatehouseProcess, gatehouseCommand, startProcess } from "../support/process.ts";

const FILE_TOKEN = "file-token-9f3Kq27xLmW4pZ";
const ENV_TOKEN = "env-token-Hs82nVq4Lr7cXe1";
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-overrides-"));
  // Each source names another loopback address, so the address bound tells which one won.
  writeFileSync(
    join(dir, "gateway.yaml"),
    `version: 1
server: { listen: 127.0.0.2:0, admin: 127.0.0.2:0, adminToken: ${FILE_TOKEN} }
database: ./file.db
upstreams: { echo: { mock: echo } }
plans: { p: { rules: [{ allow: "* /**" }] } }
routes: [{ match: "* /**", upstream: echo }]
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const environment = {
  GATEHOUSE_LISTEN: "127.0.0.3:0",
  GATEHOUSE_ADMIN: "127.0.0.4:0",
  GATEHOUSE_DB: "./env.db",
  GATEHOUSE_ADMIN_TOKEN: ENV_TOKEN,
};

async function serving(
  args: string[],
  env: Record<string, string>,
  check: (gh: GatehouseProcess) => Promise<void>,
) {
  const gh = await startProcess(gatehouseCommand(), ["serve", ...args], { cwd: dir, env });
  try {
    await check(gh);
  } finally {
    gh.proc.kill("SIGTERM");
    await gh.proc.exited;
  }
}

const tenants = (gh: GatehouseProcess, token: string) =>
  fetch(`${gh.adminUrl}/tenants`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

test("the environment overrides the file", async () => {
  await serving([], environment, async (gh) => {
    expect(new URL(gh.dataUrl).hostname).toBe("127.0.0.3");
    expect(new URL(gh.adminUrl).hostname).toBe("127.0.0.4");
    expect(await tenants(gh, ENV_TOKEN)).toBe(200);
    expect(await tenants(gh, FILE_TOKEN)).toBe(401);
  });
  expect(existsSync(join(dir, "env.db"))).toBe(true);
  expect(existsSync(join(dir, "file.db"))).toBe(false);
});

test("flags override the environment", async () => {
  await serving(
    ["--listen", "127.0.0.5:0", "--admin", "127.0.0.6:0", "--db", "./flag.db"],
    environment,
    async (gh) => {
      expect(new URL(gh.dataUrl).hostname).toBe("127.0.0.5");
      expect(new URL(gh.adminUrl).hostname).toBe("127.0.0.6");
    },
  );
  expect(existsSync(join(dir, "flag.db"))).toBe(true);
});

test("without either, the file decides", async () => {
  await serving(["--db", ":memory:"], {}, async (gh) => {
    expect(new URL(gh.dataUrl).hostname).toBe("127.0.0.2");
    expect(await tenants(gh, FILE_TOKEN)).toBe(200);
  });
});

const run = (args: string[], env: Record<string, string>) => {
  const r = Bun.spawnSync([...gatehouseCommand(), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

test("a sample token from the environment is refused under its variable's name, never echoed", () => {
  const r = run(["serve", "--db", ":memory:"], { GATEHOUSE_ADMIN_TOKEN: "changeme" });
  expect(r).toEqual({
    code: 3,
    out: "",
    err: "gatehouse serve: GATEHOUSE_ADMIN_TOKEN: the admin token is a well-known sample value; set it to a long random value\n",
  });
});

test("validate checks the variables too", () => {
  const r = run(["validate"], { GATEHOUSE_LISTEN: "localhost", GATEHOUSE_ADMIN_TOKEN: "short" });
  expect(r.err).toBe(
    'GATEHOUSE_LISTEN: "localhost" is not HOST:PORT; write e.g. 127.0.0.1:8080\n' +
      "GATEHOUSE_ADMIN_TOKEN: the admin token is shorter than 16 characters; set it to a long random value\n",
  );
  expect(r.code).toBe(1);
  expect(run(["validate"], environment)).toMatchObject({
    code: 0,
    out: "gateway.yaml: ok (0 tenants, 1 route)\n",
  });
});
